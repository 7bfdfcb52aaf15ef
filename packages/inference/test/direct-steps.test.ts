import { getLlama, LlamaContextSequence, LlamaGrammarEvaluationState, type Token } from 'node-llama-cpp';
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
  it('generate what node-llama-cpp’s evaluate() does, and are what lock-step jobs use', async () => {
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

  it('step jobs with a JSON Schema too, generating what evaluate() does under the same grammar', async () => {
    const modelPath = await ensureTestModel('tiny');
    const reference = await openEngine({ modelPath, sequences: 1, contextPerSequence: 256, lockstep: false });
    const direct = await openEngine({ modelPath, sequences: 1, contextPerSequence: 256 });
    const request: GenerateRequest = {
      prompt: COMPLETION,
      input: 'name a number',
      maxTokens: 24,
      jsonSchema: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] },
    };
    const expected = await reference.generate(request);
    const evaluate = vi.spyOn(LlamaContextSequence.prototype, 'evaluate');
    try {
      const result = await direct.generate(request);
      expect([result.text, result.generatedTokens, result.finishReason]).toEqual([
        expected.text,
        expected.generatedTokens,
        expected.finishReason,
      ]);
      expect(evaluate).not.toHaveBeenCalled();
    } finally {
      evaluate.mockRestore();
    }
    // The grammar held: the output starts as the schema's JSON object does.
    expect(expected.text).toMatch(/^\{/);
  });

  it('switch a grammar on mid-generation (a thought closing) exactly where evaluate() does', async () => {
    const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false });
    try {
      const model = await llama.loadModel({ modelPath: await ensureTestModel('tiny') });
      const context = await model.createContext({ sequences: 1, contextSize: 256, threads: 1 });
      const sequence = context.getSequence();
      const grammar = await llama.createGrammarForJsonSchema({
        type: 'object',
        properties: { ok: { type: 'boolean' } },
        required: ['ok'],
      });
      const prompt = model.tokenize('the model is', false);
      const free = 5;
      const count = 14;
      /** Up to `count` greedy tokens (to an end of generation), the grammar applying from token `free` on (after a thought). */
      async function generate(
        steps: (active: () => boolean, state: LlamaGrammarEvaluationState) => AsyncIterator<Token, void>,
      ) {
        const state = new LlamaGrammarEvaluationState({ model, grammar });
        const out: Token[] = [];
        const iterator = steps(() => out.length >= free, state);
        for (let step = await iterator.next(); !step.done && out.length < count; step = await iterator.next()) {
          out.push(step.value);
          if (model.isEogToken(step.value)) break;
        }
        await iterator.return?.();
        await sequence.clearHistory();
        return out;
      }

      const expected = await generate((active, state) =>
        sequence.evaluate(prompt, {
          temperature: 0,
          yieldEogToken: true,
          grammarEvaluationState: () => (active() ? state : undefined),
        }),
      );
      const direct = await generate(
        (active, state) => new DirectSteps(sequence, prompt, { temperature: 0, grammar: { state, active } }),
      );
      expect(direct).toEqual(expected);
      // The grammar did change the output: without it the same steps continue differently.
      const unconstrained = await generate(() => new DirectSteps(sequence, prompt, { temperature: 0 }));
      expect(unconstrained.slice(0, free)).toEqual(expected.slice(0, free));
      expect(unconstrained).not.toEqual(expected);
    } finally {
      await llama.dispose();
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
