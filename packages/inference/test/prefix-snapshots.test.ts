import { mkdir, readdir, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from '@gembatch/testing';
import type { GenerateRequest, LlamaCppEngine } from '../src/index.ts';
import { capturedLogger, corpusFile, openEngine } from './engine-fixture.ts';

/** A trained model: its greedy output does not flip on float rounding (see prefix-reuse.test.ts). */
const STORIES = corpusFile('models/stories260K.gguf');

const SHARED = {
  system: 'You read short documents and answer in one line.',
  instruction:
    'Summarise the document below in a few words. Keep names, numbers and places exactly as written, and say nothing else. '.repeat(
      3,
    ),
  completionCue: '\nSummary:',
};

const DOCUMENTS = Array.from(
  { length: 12 },
  (_, i) => `Document ${i}: the cat number ${i * 7} sat on mat ${i} near the river.`,
);

function request(input: string): GenerateRequest {
  return { prompt: SHARED, input, maxTokens: 16, ignoreEos: true };
}

async function runAll(engine: LlamaCppEngine, inputs: readonly string[]): Promise<string[]> {
  const results = await Promise.all(inputs.map((input) => engine.generate(request(input))));
  return results.map((r) => r.text);
}

async function snapshotDir(): Promise<string> {
  const dir = await tempDir('gb-snapshots-');
  onTestFinished(() => dir.cleanup());
  return dir.path;
}

describe('prefix snapshots (real model, CPU)', () => {
  it('evaluate a shared instruction once for all sequences and give the same greedy outputs', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const dir = await snapshotDir();
    const base = { modelPath: STORIES, sequences: 6, contextPerSequence: 512 };
    const off = await openEngine({ ...base, prefixReuse: false });
    const perSequence = await openEngine({ ...base, prefixSnapshots: false });
    const snapshots = await openEngine({ ...base, prefixSnapshots: true, prefixSnapshotDir: dir });

    const expected = await runAll(off, DOCUMENTS);
    expect(await runAll(perSequence, DOCUMENTS)).toEqual(expected);
    expect(await runAll(snapshots, DOCUMENTS)).toEqual(expected);

    const total = off.stats().promptTokensTotal;
    const evaluatedPerSequence = perSequence.stats().promptTokensEvaluatedTotal ?? 0;
    const stats = snapshots.stats();
    const evaluated = stats.promptTokensEvaluatedTotal ?? 0;
    expect(stats.promptTokensTotal).toBe(total);
    expect(evaluated + (stats.promptTokensReusedTotal ?? 0)).toBe(total);
    const shared = await snapshots.countPromptTokens({ prompt: { ...SHARED, completionCue: '' }, input: '' });
    // Six jobs start at once on six empty sequences: per-sequence reuse evaluates the instruction
    // six times; with snapshots two jobs do (the first, and the one that saves the shared start).
    expect(evaluatedPerSequence - evaluated).toBeGreaterThanOrEqual(3 * (shared - 4));
    expect(evaluated * 3).toBeLessThan(total);

    // The state files live in one directory of this process, gone once the engine closes.
    const [own] = await readdir(path.join(dir, 'gembatch-prefix-snapshots'));
    expect(own).toMatch(new RegExp(`^${process.pid}-`));
    expect(await readdir(path.join(dir, 'gembatch-prefix-snapshots', own ?? ''))).not.toHaveLength(0);
    await snapshots.close();
    expect(await readdir(path.join(dir, 'gembatch-prefix-snapshots'))).toEqual([]);
  });

  it("sequences that first cut an earlier task's tokens still share one snapshot", async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const dir = await snapshotDir();
    const engine = await openEngine({
      modelPath: STORIES,
      sequences: 6,
      contextPerSequence: 512,
      prefixSnapshots: true,
      prefixSnapshotDir: dir,
    });
    // Another task first: every sequence then holds its prompt and output, which the next jobs'
    // prompts share only the system message with, so each job waits for its cut before it looks
    // for a snapshot (a job that looked only before that wait evaluated the instruction itself).
    const other = { ...SHARED, instruction: 'List the animals in the document.' };
    await Promise.all(
      DOCUMENTS.slice(0, 6).map((input) => engine.generate({ prompt: other, input, maxTokens: 8, ignoreEos: true })),
    );
    const before = engine.stats();
    await runAll(engine, DOCUMENTS.slice(0, 6));
    const after = engine.stats();
    const total = after.promptTokensTotal - before.promptTokensTotal;
    const evaluated = (after.promptTokensEvaluatedTotal ?? 0) - (before.promptTokensEvaluatedTotal ?? 0);
    // One job evaluates the instruction and saves it, one more evaluates its whole prompt: well under
    // half of six prompts (six evaluations of the instruction would be most of them).
    expect(evaluated * 2).toBeLessThan(total);
  });

  it('a snapshot that cannot be loaded is evaluated instead, with the same outputs', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const dir = await snapshotDir();
    const base = { modelPath: STORIES, sequences: 3, contextPerSequence: 512 };
    const off = await openEngine({ ...base, prefixReuse: false });
    const { logger, lines } = capturedLogger();
    const engine = await openEngine({ ...base, prefixSnapshots: true, prefixSnapshotDir: dir, logger });
    const expected = await runAll(off, DOCUMENTS.slice(0, 3));

    // Two jobs: the second saves the shared start. Then the file is cut short, and three jobs
    // run: the third lands on the empty sequence, finds the snapshot and cannot load it.
    await runAll(engine, DOCUMENTS.slice(0, 2));
    const root = path.join(dir, 'gembatch-prefix-snapshots');
    const [own] = await readdir(root);
    const ownDir = path.join(root, own ?? '');
    const files = await readdir(ownDir);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) await truncate(path.join(ownDir, file), 100);
    expect(await runAll(engine, DOCUMENTS.slice(0, 3))).toEqual(expected);
    expect(lines.join('')).toContain('prefix snapshot could not be loaded');
  });

  it('removes the directory a dead engine process left behind', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const dir = await snapshotDir();
    const orphan = path.join(dir, 'gembatch-prefix-snapshots', '2147483646-abc123');
    await mkdir(orphan, { recursive: true });
    await writeFile(path.join(orphan, '0.state'), 'left behind');
    await openEngine({ modelPath: STORIES, sequences: 2, contextPerSequence: 512, prefixSnapshotDir: dir });
    const left = await readdir(path.join(dir, 'gembatch-prefix-snapshots'));
    expect(left).not.toContain('2147483646-abc123');
    expect(left).toHaveLength(1);
  });
});
