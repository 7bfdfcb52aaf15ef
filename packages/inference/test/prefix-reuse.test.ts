import { describe, expect, it } from 'vitest';
import { ensureTestModel } from '@gembatch/testing';
import type { GenerateRequest, LlamaCppEngine } from '../src/index.ts';
import { corpusFile, openEngine } from './engine-fixture.ts';

/**
 * Output comparisons run on a trained model: a random-weight model's logits are nearly flat, so a
 * different batch shape (a 20-token suffix instead of a 150-token prompt) changes float rounding
 * enough to flip its argmax, with or without reuse (measured: its greedy output already differs
 * between 1 and 2 sequences). A trained model's argmax is decisive.
 */
const STORIES = corpusFile('models/stories260K.gguf');

/** A shared task wording (system + instruction) long enough that reusing it matters. */
const SHARED = {
  system: 'You read short documents and answer in one line.',
  instruction:
    'Summarise the document below in a few words. Keep names, numbers and places exactly as written, and say nothing else. '.repeat(
      3,
    ),
  completionCue: '\nSummary:',
};

const DOCUMENTS = Array.from(
  { length: 8 },
  (_, i) => `Document ${i}: the cat number ${i * 7} sat on mat ${i} near the river.`,
);

function request(input: string, extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return { prompt: SHARED, input, maxTokens: 24, ignoreEos: true, ...extra };
}

async function runAll(engine: LlamaCppEngine, inputs: readonly string[]): Promise<string[]> {
  const results = await Promise.all(inputs.map((input) => engine.generate(request(input))));
  return results.map((r) => r.text);
}

describe('prefix reuse (real model, CPU)', () => {
  it('gives the same greedy outputs as evaluating every prompt in full, and counts the reused tokens', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const modelPath = STORIES;
    const off = await openEngine({ modelPath, sequences: 2, contextPerSequence: 512, prefixReuse: false });
    const on = await openEngine({ modelPath, sequences: 2, contextPerSequence: 512, prefixReuse: true });

    // Eight jobs on two sequences: each sequence serves four jobs in turn, so three of them find
    // the shared wording already there.
    const expected = await runAll(off, DOCUMENTS);
    const actual = await runAll(on, DOCUMENTS);
    expect(actual).toEqual(expected);

    const offStats = off.stats();
    expect(offStats.promptTokensReusedTotal).toBe(0);
    expect(offStats.promptTokensEvaluatedTotal).toBe(offStats.promptTokensTotal);

    const onStats = on.stats();
    expect(onStats.promptTokensTotal).toBe(offStats.promptTokensTotal);
    expect((onStats.promptTokensReusedTotal ?? 0) + (onStats.promptTokensEvaluatedTotal ?? 0)).toBe(
      onStats.promptTokensTotal,
    );
    const shared = await on.countPromptTokens({ prompt: { ...SHARED, completionCue: '' }, input: '' });
    // At least six of the eight jobs reuse nearly all of the shared wording (the token at the
    // boundary with the document may merge differently).
    expect(onStats.promptTokensReusedTotal).toBeGreaterThanOrEqual(6 * (shared - 4));
    expect(onStats.promptTokensEvaluatedTotal).toBeLessThan(offStats.promptTokensTotal / 2);
  });

  it('reports the reused tokens per job and keeps working when prompts share nothing', async () => {
    const modelPath = await ensureTestModel('tiny');
    const engine = await openEngine({ modelPath, sequences: 1, contextPerSequence: 512 });
    const first = await engine.generate(request(DOCUMENTS[0] ?? ''));
    const second = await engine.generate(request(DOCUMENTS[1] ?? ''));
    // The same prompt twice: everything but the last prompt token is kept.
    const again = await engine.generate(request(DOCUMENTS[1] ?? ''));
    const unrelated = await engine.generate({
      prompt: { system: '', instruction: '', completionCue: '' },
      input: 'zebra',
      maxTokens: 4,
      ignoreEos: true,
    });
    expect(first.reusedPromptTokens).toBe(0);
    expect(second.reusedPromptTokens).toBeGreaterThan(0);
    expect(second.reusedPromptTokens).toBeLessThan(second.promptTokens);
    // BOS and a leading token or two at most.
    expect(unrelated.reusedPromptTokens).toBeLessThanOrEqual(3);
    expect(unrelated.generatedTokens).toBe(4);
    expect(again.reusedPromptTokens).toBe(again.promptTokens - 1);
    const stats = engine.stats();
    expect((stats.promptTokensReusedTotal ?? 0) + (stats.promptTokensEvaluatedTotal ?? 0)).toBe(
      stats.promptTokensTotal,
    );
  });

  it('a failed job leaves an empty sequence behind', async () => {
    const modelPath = await ensureTestModel('tiny');
    const engine = await openEngine({ modelPath, sequences: 1, contextPerSequence: 512 });
    const controller = new AbortController();
    await expect(
      engine.generate(
        request(DOCUMENTS[0] ?? '', {
          maxTokens: 200,
          signal: controller.signal,
          onToken: (n) => void (n === 3 && controller.abort()),
        }),
      ),
    ).rejects.toMatchObject({ code: 'GB_ERR_CANCELLED' });
    const next = await engine.generate(request(DOCUMENTS[0] ?? ''));
    expect(next.reusedPromptTokens).toBe(0);
  });
});
