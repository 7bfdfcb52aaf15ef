import { describe, expect, it } from 'vitest';
import { ensureTestModel } from '@gembatch/testing';
import { COMPLETION, openEngine } from './engine-fixture.ts';

const MiB = 1024 ** 2;

describe('a context too big for memory is survived', () => {
  it('node-llama-cpp refuses 8 sequences of 4096 tokens in a 16 MiB cap: the engine halves S and finishes every job', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 8,
      contextPerSequence: 4096,
      memoryLimitBytes: 16 * MiB,
      // The cap is sized for the fused kernel's compute buffer; without it (the CPU default) the
      // attention matrix of a 4096-token sequence alone outgrows 16 MiB and the context is halved too.
      flashAttention: true,
    });
    expect(engine.info.sequences).toBeLessThan(8);
    expect(engine.info.sequences).toBeGreaterThanOrEqual(1);
    expect(engine.info.contextPerSequence).toBeGreaterThanOrEqual(4096);
    // As many jobs as were asked for: the extra ones wait for a free sequence.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        engine.generate({ prompt: COMPLETION, input: `job ${i}`, maxTokens: 6, ignoreEos: true }),
      ),
    );
    expect(results.map((r) => r.generatedTokens)).toEqual(Array(8).fill(6));
  });

  it('when even one sequence does not fit, the context per sequence is halved', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: 65_536,
      memoryLimitBytes: 16 * MiB,
      minContextPerSequence: 256,
    });
    expect(engine.info.sequences).toBe(1);
    expect(engine.info.contextPerSequence).toBeLessThan(65_536);
    expect(
      (await engine.generate({ prompt: COMPLETION, input: 'still works', maxTokens: 4, ignoreEos: true }))
        .generatedTokens,
    ).toBe(4);
  });
});
