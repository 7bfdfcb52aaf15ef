import { describe, expect, it } from 'vitest';
import type { GenerateRequest, LlamaCppEngine } from '../src/index.ts';
import { corpusFile, openEngine } from './engine-fixture.ts';

/**
 * The property batching must never break: a job's answer does not depend on which other jobs share
 * its decodes. Compared on a trained model (a random one's argmax moves with the batch shape, see
 * prefix-reuse.test.ts). Without the node-llama-cpp patch's logits-reorder hunk, 5 to 7 of these 48
 * jobs came out different in some rounds (a sequence sampled another's logits); the patch test has
 * the deterministic reproduction of that race, this one guards the whole path: lock-step batching,
 * prefix reuse, prefix snapshots and chunked prefill with jobs joining running sequences.
 */
const STORIES = corpusFile('models/stories260K.gguf');

const SHARED = {
  system: 'You read short stories.',
  instruction: 'Continue the story below in the same words and style. '.repeat(4),
  completionCue: '\nStory:',
};
const OPENINGS = [
  'Once upon a time',
  'Lily had a red ball',
  'Tom saw a big dog',
  'The sun was hot',
  'A little bird sang',
];

/** 48 jobs: a shared instruction or none, a distinct input each, and answers of 8 to 40 tokens. */
const REQUESTS: GenerateRequest[] = Array.from({ length: 48 }, (_, i) => ({
  prompt: i % 3 === 0 ? { system: '', instruction: '', completionCue: '' } : SHARED,
  input: `${OPENINGS[i % OPENINGS.length]} and number ${i} went to the park.`,
  maxTokens: 8 + ((i * 13) % 33),
  ignoreEos: true,
}));

async function outputs(engine: LlamaCppEngine, together: boolean): Promise<string[]> {
  if (!together) {
    const texts: string[] = [];
    for (const request of REQUESTS) texts.push((await engine.generate(request)).text);
    return texts;
  }
  return (await Promise.all(REQUESTS.map((request) => engine.generate(request)))).map((r) => r.text);
}

describe('job isolation (real model, CPU)', () => {
  it('a job answers the same whatever runs beside it: 16 sequences with reuse, snapshots and chunked prefill, against one at a time', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const alone = await openEngine({ modelPath: STORIES, sequences: 1, contextPerSequence: 512, prefixReuse: false });
    const batched = await openEngine({
      modelPath: STORIES,
      sequences: 16,
      contextPerSequence: 512,
      prefillChunkTokens: 16,
    });
    const expected = await outputs(alone, false);
    for (let round = 0; round < 3; round++) expect(await outputs(batched, true)).toEqual(expected);
  });
});
