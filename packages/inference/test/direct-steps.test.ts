import { getLlama, LlamaContextSequence, type Token } from 'node-llama-cpp';
import { describe, expect, it, vi } from 'vitest';
import { ensureTestModel } from '@gembatch/testing';
import { DirectSteps } from '../src/direct-steps.ts';
import type { GenerateRequest, LlamaCppEngine } from '../src/index.ts';
import { COMPLETION, openEngine } from './engine-fixture.ts';

const requests: GenerateRequest[] = [
  { prompt: COMPLETION, input: 'the model number one is', maxTokens: 24, ignoreEos: true },
  { prompt: COMPLETION, input: 'a second, longer input that the model continues', maxTokens: 16 },
  { prompt: COMPLETION, input: 'the model number one is', maxTokens: 8, ignoreEos: true, temperature: 0 },
];

/** The requests one after another on one sequence (so both engines batch alike), their texts and token counts. */
async function run(engine: LlamaCppEngine): Promise<Array<[string, number, string]>> {
  const out: Array<[string, number, string]> = [];
  for (const request of requests) {
    const result = await engine.generate(request);
    out.push([result.text, result.generatedTokens, result.finishReason]);
  }
  return out;
}

describe('direct sequence steps (real model, CPU)', () => {
  it('generate what node-llama-cpp’s evaluate() does, and are what lock-step jobs without a grammar use', async () => {
    const modelPath = await ensureTestModel('tiny');
    // Lock-step off: the engine generates through sequence.evaluate(), the path direct steps replace.
    const reference = await openEngine({ modelPath, sequences: 1, contextPerSequence: 256, lockstep: false });
    const direct = await openEngine({ modelPath, sequences: 1, contextPerSequence: 256 });
    const expected = await run(reference);

    const evaluate = vi.spyOn(LlamaContextSequence.prototype, 'evaluate');
    try {
      expect(await run(direct)).toEqual(expected);
      expect(evaluate).not.toHaveBeenCalled();
    } finally {
      evaluate.mockRestore();
    }
    // Prefix reuse kept the sequence's tokens right: the repeated prompt reused its shared part.
    expect(direct.stats().promptTokensReusedTotal).toBe(reference.stats().promptTokensReusedTotal);
  });

  it('leave jobs with a JSON Schema to evaluate(), whose grammar changes while a model thinks', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: 256,
    });
    const evaluate = vi.spyOn(LlamaContextSequence.prototype, 'evaluate');
    try {
      await engine.generate({
        prompt: COMPLETION,
        input: 'name a number',
        maxTokens: 24,
        jsonSchema: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] },
      });
      expect(evaluate).toHaveBeenCalled();
    } finally {
      evaluate.mockRestore();
    }
  });

  it('refuse a step past the sequence’s context with GB_ERR_CONTEXT_OVERFLOW, as evaluate() does here', async () => {
    const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false });
    try {
      const model = await llama.loadModel({ modelPath: await ensureTestModel('tiny') });
      const context = await model.createContext({ sequences: 1, contextSize: 128, threads: 1 });
      const steps = new DirectSteps(context.getSequence(), Array<Token>(context.contextSize).fill(1 as Token), {
        temperature: 0,
      });
      await expect(steps.next()).rejects.toMatchObject({ code: 'GB_ERR_CONTEXT_OVERFLOW' });
      await steps.return();
    } finally {
      await llama.dispose();
    }
  });
});
