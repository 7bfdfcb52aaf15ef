import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { ensureTestModel, ensureTinyGemma4 } from '@gembatch/testing';
import { loadLlama } from '../src/load-llama.ts';
import { PromptFormat } from '../src/prompt-format.ts';

const PROMPT = { system: 'You continue notes.', instruction: 'Continue this note.', completionCue: '\nNote:' };

describe('PromptFormat', () => {
  let llama: Llama;
  const models: LlamaModel[] = [];
  const load = async (modelPath: string) => {
    const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
    models.push(model);
    return model;
  };
  beforeAll(async () => {
    llama = await loadLlama({ gpu: false });
  });
  afterAll(async () => {
    for (const model of models) await model.dispose();
    await llama.dispose();
  });

  it('tokenizes a prompt once: counting it and then generating it build the same tokens from one tokenization', async () => {
    const model = await load(await ensureTestModel('tiny'));
    const tokenize = vi.spyOn(model, 'tokenize');
    const format = PromptFormat.for(model, 'completion');
    const first = format.build({ prompt: PROMPT, input: 'the parcel left Leeds' });
    const calls = tokenize.mock.calls.length;
    expect(calls).toBeGreaterThan(0);
    const again = format.build({ prompt: PROMPT, input: 'the parcel left Leeds' }, ['</answer>']);
    expect(tokenize.mock.calls.length).toBe(calls);
    expect(again.tokens).toEqual(first.tokens);
    expect(again.stopTriggers).toEqual(['</answer>']);
    // A caller changing its copy changes nothing kept.
    again.tokens.length = 0;
    expect(format.build({ prompt: PROMPT, input: 'the parcel left Leeds' }).tokens).toEqual(first.tokens);
    // Another input is tokenized afresh.
    const other = format.build({ prompt: PROMPT, input: 'the parcel left York' });
    expect(tokenize.mock.calls.length).toBeGreaterThan(calls);
    expect(other.tokens).not.toEqual(first.tokens);
  });

  it('a kept prompt still follows thinking and structured output (Gemma 4 template)', async () => {
    const model = await load((await ensureTinyGemma4()).modelPath);
    const format = PromptFormat.for(model, 'gemma4');
    const request = { prompt: PROMPT, input: 'x' };
    const plain = format.build(request);
    const thinking = format.build({ ...request, thinking: true });
    const thinkingJson = format.build({ ...request, thinking: true, jsonSchema: { type: 'object' } });
    expect(thinking.tokens.length).toBeGreaterThan(plain.tokens.length);
    expect(thinkingJson.startsInThought).toBe(true);
    expect(thinking.startsInThought).toBe(false);
    expect(format.build(request).tokens).toEqual(plain.tokens);
  });
});
