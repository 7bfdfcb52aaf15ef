import { describe, expect, it } from 'vitest';
import { TASKS } from '@gembatch/contracts';
import { ensureTestModel, makeLongText } from '@gembatch/testing';
import { planChunks, type GenerateRequest } from '../src/index.ts';
import { openEngine } from './engine-fixture.ts';

const CONTEXT = 512;
const MAP_TOKENS = 16;
/** Tokens kept free beyond prompt + max tokens (as the worker does). */
const SAFETY = 16;

describe('a document three times the context', () => {
  it('is split into token-sized chunks, each processed once, then reduced in order', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 4,
      contextPerSequence: CONTEXT,
    });
    let words = 200;
    let document = makeLongText(words);
    while ((await engine.countTokens(document)) < 3 * CONTEXT) document = makeLongText((words += 100));
    const documentTokens = await engine.countTokens(document);

    const prompt = TASKS.summarize.prompt({ length: 'short' });
    const request = (input: string): GenerateRequest => ({ prompt, input, maxTokens: MAP_TOKENS, ignoreEos: true });
    const overhead = (await engine.countPromptTokens(request(document))) - documentTokens;
    const maxChunkTokens = CONTEXT - overhead - MAP_TOKENS - SAFETY;
    const chunks = await planChunks(document, { engine, maxTokens: maxChunkTokens, overlapTokens: 32 });

    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks[0]?.start).toBe(0);
    expect(chunks.at(-1)?.end).toBe(documentTokens);
    for (const [i, chunk] of chunks.entries()) {
      expect(chunk.index).toBe(i);
      expect(chunk.tokenCount).toBeLessThanOrEqual(maxChunkTokens);
      expect((await engine.countPromptTokens(request(chunk.text))) + MAP_TOKENS).toBeLessThanOrEqual(CONTEXT);
      if (i > 0) expect(chunks[i - 1]?.end).toBe(chunk.start + 32);
    }

    // Map: every chunk at once (the engine batches them over its 4 sequences).
    const processed = new Array<number>(chunks.length).fill(0);
    const partials = await Promise.all(
      chunks.map(async (chunk) => {
        processed[chunk.index] = (processed[chunk.index] ?? 0) + 1;
        return { index: chunk.index, result: await engine.generate(request(chunk.text)) };
      }),
    );
    expect(processed).toEqual(new Array(chunks.length).fill(1));

    // Reduce: the partial outputs in chunk order.
    const ordered = [...partials].sort((a, b) => a.index - b.index).map((p) => p.result.text);
    const summarizeReduce = TASKS.summarize.bind({ length: 'short' }).reduce;
    if (summarizeReduce.strategy !== 'model') throw new Error('summarize reduces with the model');
    const reduce = await engine.generate({
      prompt: summarizeReduce.prompt,
      input: ordered.join('\n\n'),
      maxTokens: MAP_TOKENS,
      ignoreEos: true,
    });
    expect(reduce.generatedTokens).toBe(MAP_TOKENS);
    expect(engine.stats().generationTokensTotal).toBe((chunks.length + 1) * MAP_TOKENS);
  });

  it('is planned the same way every time', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: CONTEXT,
    });
    const document = makeLongText(1500, 7);
    const first = await planChunks(document, { engine, maxTokens: 300, overlapTokens: 20 });
    const second = await planChunks(document, { engine, maxTokens: 300, overlapTokens: 20 });
    expect(second).toEqual(first);
    expect(first.length).toBeGreaterThan(1);
  });
});
