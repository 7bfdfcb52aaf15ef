import { describe, expect, it } from 'vitest';
import { ensureTestModel } from '@gembatch/testing';
import { COMPLETION, openEngine } from './engine-fixture.ts';

describe('lock-step batched decoding (real model, CPU)', () => {
  it('8 concurrent jobs: at least 90% of decode steps carry all 8 sequences', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 8,
      contextPerSequence: 256,
    });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        engine.generate({ prompt: COMPLETION, input: `the model number ${i} is`, maxTokens: 48, ignoreEos: true }),
      ),
    );
    const stats = engine.stats();
    expect(results.map((r) => r.generatedTokens)).toEqual(Array(8).fill(48));
    expect(
      results.every((r) => r.finishReason === 'length' && r.timeToFirstTokenMs !== null && r.interTokenMs !== null),
    ).toBe(true);
    expect(stats.generationTokensTotal).toBe(8 * 48);
    expect(stats.fullDecodeCallsTotal / stats.decodeCallsTotal).toBeGreaterThanOrEqual(0.9);
    // One decode per step (the prompts share the first): 48 steps, ~8 tokens each.
    expect(stats.decodeCallsTotal).toBeLessThanOrEqual(48 + 2);
    expect(stats.decodeTokensTotal / stats.decodeCallsTotal).toBeGreaterThan(7.5);
    expect(stats.decodeBatchTokens.get(8)).toBeGreaterThanOrEqual(40);
    expect(stats.activeSequences).toBe(0);
  });

  it('splits the time it generates into decode, sampling and scheduling, and counts nothing while idle', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 4,
      contextPerSequence: 256,
    });
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        engine.generate({ prompt: COMPLETION, input: `the model number ${i} is`, maxTokens: 24, ignoreEos: true }),
      ),
    );
    const wall = performance.now() - started;
    const first = engine.stats().stepTimeMsTotal;
    if (!first) throw new Error('no step times');
    // Each part is there: decodes, each step's 4 samples (after the decode's end, which the patched
    // node-llama-cpp reports) and the JS that assembles the next step; together no more than the wall time.
    expect(first.decode).toBeGreaterThan(0);
    expect(first.sampling).toBeGreaterThan(0);
    expect(first.scheduling).toBeGreaterThan(0);
    expect(first.decode + first.sampling + first.scheduling).toBeLessThanOrEqual(wall);
    // Idle time between jobs adds nothing.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await engine.generate({ prompt: COMPLETION, input: 'one more', maxTokens: 2, ignoreEos: true });
    const second = engine.stats().stepTimeMsTotal;
    if (!second) throw new Error('no step times');
    const added =
      second.decode + second.sampling + second.scheduling - (first.decode + first.sampling + first.scheduling);
    expect(added).toBeGreaterThan(0);
    expect(added).toBeLessThan(200);
  });

  it('a job that arrives mid-way joins at the next step; a finished job frees its sequence at once', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 2,
      contextPerSequence: 256,
    });
    const order: string[] = [];
    let late: Promise<unknown> | undefined;
    const long = engine
      .generate({
        prompt: COMPLETION,
        input: 'a long story about the world',
        maxTokens: 60,
        ignoreEos: true,
        onToken: (n) => {
          if (n === 10)
            late = engine
              .generate({ prompt: COMPLETION, input: 'late', maxTokens: 20, ignoreEos: true })
              .then(() => order.push('late'));
        },
      })
      .then((r) => {
        order.push('long');
        return r;
      });
    const short = engine
      .generate({ prompt: COMPLETION, input: 'short', maxTokens: 5, ignoreEos: true })
      .then(() => order.push('short'));
    await Promise.all([long, short]);
    await late;
    // Three jobs on two sequences: the late job took the sequence the short one freed and finished first.
    expect(order).toEqual(['short', 'late', 'long']);
    expect((await long).generatedTokens).toBe(60);
    const stats = engine.stats();
    expect(stats.fullDecodeCallsTotal / stats.decodeCallsTotal).toBeGreaterThanOrEqual(0.9);
  });

  it('more jobs than sequences wait for a free one and all complete', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 2,
      contextPerSequence: 128,
    });
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        engine.generate({ prompt: COMPLETION, input: `job ${i}`, maxTokens: 8, ignoreEos: true }),
      ),
    );
    expect(results.map((r) => r.generatedTokens)).toEqual([8, 8, 8, 8, 8]);
  });
});
