import { describe, expect, it } from 'vitest';
import type { GenerateResult, LlamaCppEngine } from '../src/index.ts';
import { COMPLETION, corpusFile, openEngine } from './engine-fixture.ts';

/** A trained model: its greedy argmax does not flip with float rounding (see prefix-reuse.test.ts). */
const STORIES = corpusFile('models/stories260K.gguf');

const LONG_PROMPT =
  'Once upon a time there was a little girl named Lily who loved to play in the park with her dog. '.repeat(5);

/**
 * Job A generates 60 tokens; when it has 5, the `joining` inputs arrive together (each generating
 * `maxTokens`) and join it.
 */
async function arrivingWhileDecoding(
  engine: LlamaCppEngine,
  joining: readonly string[],
  maxTokens: number,
): Promise<{ a: GenerateResult; joined: GenerateResult[] }> {
  let joined: Promise<GenerateResult[]> | undefined;
  const a = await engine.generate({
    prompt: COMPLETION,
    input: 'Once upon a time',
    maxTokens: 60,
    ignoreEos: true,
    onToken: (n) => {
      if (n === 5)
        joined = Promise.all(
          joining.map((input) => engine.generate({ prompt: COMPLETION, input, maxTokens, ignoreEos: true })),
        );
    },
  });
  if (!joined) throw new Error('the joining jobs never started');
  return { a, joined: await joined };
}

/** An engine on stories260K (the caller has checked it exists) with this chunk cap. */
function storiesEngine(
  sequences: number,
  contextPerSequence: number,
  prefillChunkTokens: number,
): Promise<LlamaCppEngine> {
  return openEngine({ modelPath: STORIES as string, sequences, contextPerSequence, prefillChunkTokens });
}

/** Tokens in the largest decode, from the histogram's upper bounds. */
function largestDecode(engine: LlamaCppEngine): number {
  let largest = 0;
  for (const [bound, count] of engine.stats().decodeBatchTokens) if (count > 0) largest = Math.max(largest, bound);
  return largest;
}

describe('chunked prefill (real model, CPU)', () => {
  it('a long prompt joining running sequences goes in chunks of at most the cap per step, with the same results', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const whole = await storiesEngine(2, 512, 0);
    const chunked = await storiesEngine(2, 512, 8);

    // Job B arrives with a long prompt while job A generates.
    const longJoin = async (engine: LlamaCppEngine) => {
      const { a, joined } = await arrivingWhileDecoding(engine, [LONG_PROMPT], 20);
      return { a, b: joined[0] as GenerateResult };
    };
    const expected = await longJoin(whole);
    const actual = await longJoin(chunked);
    expect(actual.b.promptTokens).toBeGreaterThan(100);
    expect(actual.a.text).toBe(expected.a.text);
    expect(actual.b.text).toBe(expected.b.text);
    expect(actual.a.generatedTokens).toBe(60);
    expect(actual.b.generatedTokens).toBe(20);

    // Whole: B's prompt went into one decode (> 64 tokens). Chunked: no decode carried more than
    // A's token plus 8 prompt tokens (histogram bucket 16).
    expect(largestDecode(whole)).toBeGreaterThan(64);
    expect(largestDecode(chunked)).toBeLessThanOrEqual(16);
  });

  it('short prompts joining together share one step budget: their last chunks do not add up past the cap', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    // Each joining prompt is shorter than the cap, so none is cut; five arriving at once must still
    // not go into one decode (the bug: every last chunk went in unbudgeted, 14 x 39 tokens at once).
    const engine = await storiesEngine(6, 256, 16);
    const inputs = [
      'a cat sat down',
      'the dog ran far away',
      'a big red ball',
      'Lily and Tom played',
      'the sun was hot',
    ];
    const { a, joined: results } = await arrivingWhileDecoding(engine, inputs, 8);
    expect(a.generatedTokens).toBe(60);
    expect(results.map((r) => r.generatedTokens)).toEqual([8, 8, 8, 8, 8]);
    const promptTokens = results.reduce((sum, r) => sum + r.promptTokens, 0);
    // Together they would overflow bucket 32 (the old code's decode of them all landed in bucket 64);
    // budgeted, a decode holds at most the cap (16) plus one token per generating sequence (6).
    expect(promptTokens).toBeGreaterThan(32);
    expect(largestDecode(engine)).toBeLessThanOrEqual(32);
  });

  it('jobs that start together are not chunked (nothing is decoding yet) and all complete', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const engine = await storiesEngine(3, 512, 8);
    const results = await Promise.all(
      [0, 1, 2].map((i) =>
        engine.generate({ prompt: COMPLETION, input: `${i} ${LONG_PROMPT}`, maxTokens: 10, ignoreEos: true }),
      ),
    );
    expect(results.map((r) => r.generatedTokens)).toEqual([10, 10, 10]);
    expect(largestDecode(engine)).toBeGreaterThan(64);
  });
});
