import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from '@gembatch/testing';
import { MIN_SNAPSHOT_TOKENS, PrefixSnapshots } from './prefix-snapshots.ts';

const range = (start: number, length: number) => Array.from({ length }, (_, i) => start + i);
const SHARED = range(1000, MIN_SNAPSHOT_TOKENS + 8);
const prompt = (doc: number) => [...SHARED, ...range(doc * 100, 10)];

async function open(maxSnapshots = 8): Promise<PrefixSnapshots> {
  const dir = await tempDir('gb-snapshots-unit-');
  onTestFinished(() => dir.cleanup());
  const snapshots = await PrefixSnapshots.create({ baseDir: dir.path, maxSnapshots });
  onTestFinished(() => snapshots.close());
  return snapshots;
}

describe('PrefixSnapshots', () => {
  it('claims the start a prompt shares with a recent one, once, and finds it when saved', async () => {
    const snapshots = await open();
    expect(snapshots.claim(prompt(1), 0)).toBeUndefined();
    const pending = snapshots.claim(prompt(2), 0);
    expect(pending?.snapshot.tokens).toEqual(SHARED);
    // A third prompt finds the pending snapshot and cannot claim another of the same start.
    expect(snapshots.claim(prompt(3), 0)).toBeUndefined();
    const found = snapshots.find(prompt(3), 0);
    expect(found).toBe(pending?.snapshot);
    await writeFile(pending?.file ?? '', 'state');
    pending?.finish('saved');
    expect(await found?.file).toBe(pending?.file);
    // Not when the sequence already holds as much, nor for a prompt that is the prefix itself.
    expect(snapshots.find(prompt(4), SHARED.length)).toBeUndefined();
    expect(snapshots.find(SHARED, 0)).toBeUndefined();
  });

  it('does not claim a short shared start, nor more than the prompt minus its last token', async () => {
    const snapshots = await open();
    const short = range(1, MIN_SNAPSHOT_TOKENS - 1);
    snapshots.claim([...short, 7], 0);
    expect(snapshots.claim([...short, 8], 0)).toBeUndefined();
    snapshots.claim(prompt(1), 0);
    const same = snapshots.claim(prompt(1), 0);
    expect(same?.snapshot.tokens).toEqual(prompt(1).slice(0, -1));
  });

  it('a failed save settles the waiters with no file and removes the snapshot', async () => {
    const snapshots = await open();
    snapshots.claim(prompt(1), 0);
    const pending = snapshots.claim(prompt(2), 0);
    const waiting = snapshots.find(prompt(3), 0);
    pending?.finish('failed');
    expect(await waiting?.file).toBeUndefined();
    expect(snapshots.size).toBe(0);
  });

  it('keeps the most recently used snapshots and deletes the files of the others', async () => {
    const snapshots = await open(1);
    const save = async (first: number[], second: number[]) => {
      snapshots.claim(first, 0);
      const pending = snapshots.claim(second, 0);
      await writeFile(pending?.file ?? '', 'state');
      pending?.finish('saved');
      return pending?.file ?? '';
    };
    const a = await save(prompt(1), prompt(2));
    const other = range(5000, 50);
    const b = await save([...other, 1], [...other, 2]);
    expect(snapshots.size).toBe(1);
    await expect.poll(() => existsSync(a)).toBe(false);
    expect(existsSync(b)).toBe(true);
    expect(snapshots.find([...other, 3], 0)?.tokens).toEqual(other);
  });

  it('removes its directory on close', async () => {
    const snapshots = await open();
    expect(existsSync(snapshots.dir)).toBe(true);
    await snapshots.close();
    expect(existsSync(snapshots.dir)).toBe(false);
  });
});

describe('PrefixSnapshots after failed saves', () => {
  it('stops claiming after three saves in a row failed, keeps finding saved ones', async () => {
    const snapshots = await open();
    for (let i = 0; i < 3; i++) {
      const shared = range(10_000 * (i + 1), 40);
      snapshots.claim([...shared, 1], 0);
      snapshots.claim([...shared, 2], 0)?.finish('failed');
    }
    expect(snapshots.disabled).toBe(true);
    const shared = range(90_000, 40);
    snapshots.claim([...shared, 1], 0);
    expect(snapshots.claim([...shared, 2], 0)).toBeUndefined();
  });

  it('jobs that end before saving (cancelled) do not count as failed saves', async () => {
    const snapshots = await open();
    for (let i = 0; i < 5; i++) {
      const shared = range(10_000 * (i + 1), 40);
      snapshots.claim([...shared, 1], 0);
      snapshots.claim([...shared, 2], 0)?.finish('abandoned');
    }
    expect(snapshots.disabled).toBe(false);
    expect(snapshots.size).toBe(0);
    const shared = range(90_000, 40);
    snapshots.claim([...shared, 1], 0);
    expect(snapshots.claim([...shared, 2], 0)).toBeDefined();
  });
});
