import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { ensureTestModel, serveModelHub, tempDir } from '@gembatch/testing';
import {
  fileSha256,
  GEMMA4_12B_CATALOG,
  readModelLock,
  resolveModel,
  type CatalogEntry,
  type HardwareInfo,
} from '../src/index.ts';

const COMMIT_A = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const COMMIT_B = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const PINNED = '0123456789abcdef0123456789abcdef01234567';
const KEY = 'test/tiny/tiny-q8.gguf';
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const hardware: HardwareInfo = {
  accelerator: 'cpu',
  gpuNames: [],
  vramTotalBytes: 0,
  vramFreeBytes: 0,
  unifiedMemory: false,
  ramTotalBytes: 64 * 1024 ** 2,
  ramFreeBytes: 64 * 1024 ** 2,
  cpuCores: 2,
  cpuMathCores: 2,
  memoryBytes: 64 * 1024 ** 2,
  memoryKind: 'ram',
  memoryOverridden: false,
  recommendedThreads: 1,
};

function catalogWith(entry: Partial<CatalogEntry>, bytes: number) {
  return {
    ...GEMMA4_12B_CATALOG,
    architecture: {
      ...GEMMA4_12B_CATALOG.architecture,
      layers: 2,
      globalLayers: 2,
      kvHeads: 2,
      headDim: 64,
      slidingWindow: undefined,
      trainContext: 4096,
    },
    computeBufferBytes: 1_000_000,
    entries: [
      { quant: 'Q8_0', file: 'tiny-q8.gguf', source: `hf:${KEY}`, bytes, qualityRank: 90, note: 'fits', ...entry },
    ],
  };
}

async function scratch() {
  const dir = await tempDir();
  onTestFinished(() => dir.cleanup());
  return dir.path;
}

/** A copy of `bytes` with one byte changed in the middle: same size, another sha256. */
function tampered(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const at = Math.floor(copy.length / 2);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
}

async function failureOf(promise: Promise<unknown>): Promise<GembatchError> {
  const failure = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(GembatchError);
  return failure as GembatchError;
}

describe('model lock (trust on first use)', () => {
  it('the first download resolves the revision to a commit, downloads from it and records it in the lock', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    const hub = await serveModelHub({ [KEY]: model }, { commit: COMMIT_A });
    const dir = await scratch();
    const resolved = await resolveModel({
      modelsDir: dir,
      hardware,
      catalog: catalogWith({}, model.length),
      endpoint: hub.endpoint,
      sequences: 2,
      contextPerSequence: 512,
    });
    expect(sha(await readFile(resolved.path))).toBe(sha(model));
    // HEAD at the branch, then the bytes from the commit it resolved to.
    expect(hub.revisions[0]).toBe('main');
    expect(hub.revisions.slice(1)).toEqual([COMMIT_A]);
    const lock = await readModelLock(path.join(dir, 'models.lock.json'));
    expect(lock.files['tiny-q8.gguf']).toEqual({
      repo: 'test/tiny',
      file: 'tiny-q8.gguf',
      commit: COMMIT_A,
      sha256: sha(model),
      size: model.length,
    });
    // The hash computed while downloading is remembered, so the first load does not read the file again.
    expect(JSON.parse(await readFile(`${resolved.path}.hashstamp.json`, 'utf8'))).toMatchObject({
      sha256: sha(model),
      size: model.length,
    });
  });

  it('a later download of a changed upstream file fails with GB_ERR_MODEL_CHECKSUM naming both hashes, from the locked commit', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    const files: Record<string, Buffer> = { [KEY]: model };
    const lockFile = path.join(await scratch(), 'committed', 'models.lock.json');
    const first = await serveModelHub(files, { commit: COMMIT_A });
    await resolveModel({
      modelsDir: await scratch(),
      lockFile,
      hardware,
      catalog: catalogWith({}, model.length),
      endpoint: first.endpoint,
      sequences: 2,
      contextPerSequence: 512,
    });

    // Upstream moved: the branch now names another commit and serves other bytes; a fresh node shares the lock.
    const changed = tampered(model);
    files[KEY] = changed;
    const second = await serveModelHub(files, { commit: COMMIT_B });
    const dir = await scratch();
    const failure = await failureOf(
      resolveModel({
        modelsDir: dir,
        lockFile,
        hardware,
        catalog: catalogWith({}, model.length),
        endpoint: second.endpoint,
      }),
    );
    expect(failure.code).toBe('GB_ERR_MODEL_CHECKSUM');
    expect(failure.retryable).toBe(false);
    expect(failure.message).toContain('tiny-q8.gguf');
    expect(failure.message).toContain(sha(model));
    expect(failure.message).toContain(sha(changed));
    expect(second.revisions).toEqual([COMMIT_A]);
    expect(existsSync(path.join(dir, 'tiny-q8.gguf'))).toBe(false);
    // The lock still holds the first version.
    expect((await readModelLock(lockFile)).files['tiny-q8.gguf']?.sha256).toBe(sha(model));
  });

  it('a cached file changed on disk fails on load, also given by path, without touching the network', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    const hub = await serveModelHub({ [KEY]: model }, { commit: COMMIT_A });
    const dir = await scratch();
    const catalog = catalogWith({}, model.length);
    const resolved = await resolveModel({
      modelsDir: dir,
      hardware,
      catalog,
      endpoint: hub.endpoint,
      sequences: 2,
      contextPerSequence: 512,
    });
    // A second load of the intact file passes (its hash is remembered by size and mtime).
    await resolveModel({
      modelsDir: dir,
      hardware,
      catalog,
      endpoint: hub.endpoint,
      sequences: 2,
      contextPerSequence: 512,
    });
    const asked = hub.revisions.length;

    const changed = tampered(model);
    await writeFile(resolved.path, changed);
    for (const options of [{ catalog }, { model: resolved.path }]) {
      const failure = await failureOf(resolveModel({ modelsDir: dir, hardware, endpoint: hub.endpoint, ...options }));
      expect(failure.code).toBe('GB_ERR_MODEL_CHECKSUM');
      expect(failure.retryable).toBe(false);
      expect(failure.message).toContain('tiny-q8.gguf');
      expect(failure.message).toContain(sha(model));
      expect(failure.message).toContain(sha(changed));
    }
    expect(hub.revisions.length).toBe(asked);
  });

  it('an hf: URI is locked too, and a catalog pin takes precedence: its revision is in the URL', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    const hub = await serveModelHub({ [KEY]: model }, { commit: PINNED });
    const dir = await scratch();
    await resolveModel({
      modelsDir: dir,
      hardware,
      catalog: catalogWith({ revision: PINNED, sha256: sha(model) }, model.length),
      endpoint: hub.endpoint,
      sequences: 2,
      contextPerSequence: 512,
    });
    expect(new Set(hub.revisions)).toEqual(new Set([PINNED]));
    expect((await readModelLock(path.join(dir, 'models.lock.json'))).files['tiny-q8.gguf']?.commit).toBe(PINNED);

    const other = await scratch();
    await resolveModel({ model: `hf:${KEY}`, modelsDir: other, hardware, endpoint: hub.endpoint });
    expect((await readModelLock(path.join(other, 'models.lock.json'))).files['tiny-q8.gguf']).toMatchObject({
      repo: 'test/tiny',
      sha256: sha(model),
      commit: PINNED,
    });
  });

  it('fileSha256 hashes again after any change, even to the same size', async () => {
    const dir = await scratch();
    const file = path.join(dir, 'f.bin');
    await writeFile(file, Buffer.from('first'));
    expect((await fileSha256(file)).sha256).toBe(sha(Buffer.from('first')));
    await rm(file);
    await writeFile(file, Buffer.from('other'));
    expect((await fileSha256(file)).sha256).toBe(sha(Buffer.from('other')));
  });
});
