import { GembatchError, TASKS, type TaskRegistry } from '@gembatch/contracts';
import { createLlamaCppEngine, type Engine } from '@gembatch/inference';
import { ensureTestModel } from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskRunner, type TaskOutcome } from '../src/processors/task-runner.ts';
import { broken, outline, verdict } from './tasks/outline-task.ts';

/** The built-in registry plus the test-only tasks: one line each, as adding a built-in task is. */
const tasks: TaskRegistry = { ...TASKS, outline, verdict, broken };

const TEXT = 'Ada Lovelace wrote the first published program for the Analytical Engine in 1843.';
const REDUCE = { contextTokens: 1024, safetyTokens: 16 };

async function failure(promise: Promise<unknown>): Promise<GembatchError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(GembatchError);
  return error as GembatchError;
}

describe('a task defined in one file and registered with one line', () => {
  let engine: Engine;
  let runner: TaskRunner;
  beforeAll(async () => {
    engine = await createLlamaCppEngine({
      modelPath: await ensureTestModel('tiny'),
      gpu: false,
      threads: 1,
      sequences: 1,
      contextPerSequence: 1024,
    });
    runner = new TaskRunner({ engine, schemaRepairs: 0, tasks });
  });
  afterAll(async () => engine?.close());

  it('runs through the real runner as its definition says: options, calls, output, merge and chunking', async () => {
    const job = { task: 'outline', options: { points: 3 }, max_tokens: 4 };
    const first = await runner.run(job, { text: TEXT, media: [] });
    // Three engine calls, as the task's run makes, summed by the runner.
    expect(first.stats.calls).toBe(3);
    expect(first.output).toEqual({ points: expect.any(Array) });
    expect((first.output as { points: string[] }).points).toHaveLength(3);
    expect(first.stats.generatedTokens).toBeGreaterThan(0);

    const second = await runner.run({ ...job, options: {} }, { text: TEXT, media: [] });
    // The option's default (2) came from the task's options schema.
    expect(second.stats.calls).toBe(2);

    // The concat reduce is the definition's merge, in chunk order, with no engine call.
    const merged = await runner.reduce(job, [first, second], REDUCE);
    expect((merged.output as { points: string[] }).points).toEqual([
      ...(first.output as { points: string[] }).points,
      ...(second.output as { points: string[] }).points,
    ]);
    expect(merged.stats.calls).toBe(5);
    // Concatenated outputs take no overlap and keep blank chunks (the default of a concat reduce).
    expect(runner.chunking(job)).toEqual({ overlap: false, dropBlankChunks: false });
  }, 120_000);

  it("reduces with the model by running the task on the partials with the definition's reduce prompt", async () => {
    // Room for the whitespace a grammar allows and random weights produce.
    const job = { task: 'verdict', options: {}, max_tokens: 48 };
    const partials = [
      await runner.run(job, { text: TEXT, media: [] }),
      await runner.run(job, { text: 'The sky was grey.', media: [] }),
    ];
    for (const partial of partials) expect(['yes', 'no']).toContain((partial.output as { answer: string }).answer);
    const reduced = await runner.reduce(job, partials, REDUCE);
    expect(['yes', 'no']).toContain((reduced.output as { answer: string }).answer);
    // Both partials' calls plus one reduce call.
    expect(reduced.stats.calls).toBe(3);
    expect(runner.chunking(job)).toEqual({ overlap: true, dropBlankChunks: true });
  }, 120_000);

  it('checks every output against the task schema: a run, and a chunk result read back from Redis', async () => {
    const error = await failure(runner.run({ task: 'broken', options: {}, max_tokens: 4 }, { text: TEXT, media: [] }));
    expect(error.code).toBe('GB_ERR_OUTPUT_INVALID');
    expect(error.retryable).toBe(false);

    // A chunk's outcome that does not parse as the task's output never reaches the merge.
    const bad: TaskOutcome = {
      output: { points: 'not a list' },
      text: '',
      stats: (await runner.run({ task: 'outline', options: { points: 1 }, max_tokens: 2 }, { text: TEXT, media: [] }))
        .stats,
    };
    expect((await failure(runner.reduce({ task: 'outline', options: {}, max_tokens: 2 }, [bad], REDUCE))).code).toBe(
      'GB_ERR_OUTPUT_INVALID',
    );
  }, 120_000);

  it('refuses options its schema refuses and a task no registry holds', async () => {
    expect(() =>
      runner.request({ task: 'outline', options: { points: 9 }, max_tokens: 4 }, { text: TEXT, media: [] }),
    ).toThrow(expect.objectContaining({ code: 'GB_ERR_BAD_REQUEST' }));
    const builtIn = new TaskRunner({ engine, schemaRepairs: 0 });
    expect(() => builtIn.request({ task: 'outline', options: {}, max_tokens: 4 }, { text: TEXT, media: [] })).toThrow(
      expect.objectContaining({ code: 'GB_ERR_BAD_REQUEST' }),
    );
  });
});
