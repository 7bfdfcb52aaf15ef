import { describe, expect, it } from 'vitest';
import { ensureTestModel, ensureTinyGemma4 } from '@gembatch/testing';
import { COMPLETION, corpusFile, openEngine } from './engine-fixture.ts';

const PROMPT = { system: 'You summarize.', instruction: 'Summarize this.', completionCue: '\nSummary:' };

describe('prompt modes', () => {
  it('a model with a chat template is prompted through it', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tinyChat'),
      sequences: 1,
      contextPerSequence: 256,
    });
    expect(engine.info.chat).toBe(true);
    const input = 'the model is good';
    // Template turns and both messages around the input.
    expect(await engine.countPromptTokens({ prompt: PROMPT, input })).toBeGreaterThan(
      (await engine.countTokens(input)) + (await engine.countTokens('Summarize this.')),
    );
    const result = await engine.generate({ prompt: PROMPT, input, maxTokens: 8 });
    expect(result.generatedTokens).toBeGreaterThanOrEqual(0);
    expect(result.text).not.toMatch(/<start_of_turn>|<end_of_turn>/);
  });

  it('a model without a template runs in completion mode (real trained model from the corpus)', async (context) => {
    const stories = corpusFile('models/stories260K.gguf');
    if (!stories) return context.skip('corpus absent: models/stories260K.gguf');
    const engine = await openEngine({ modelPath: stories, sequences: 1, contextPerSequence: 256 });
    expect(engine.info.chat).toBe(false);
    const result = await engine.generate({
      prompt: { ...COMPLETION, instruction: 'Once upon a time, there was a little girl named Lily.' },
      input: '',
      maxTokens: 40,
    });
    expect(result.text).toMatch(/[a-z]+ [a-z]+/i);
    expect(result.promptTokens).toBeGreaterThan(5);
  });

  it('Gemma 4: thinking is switched per request and thoughts never reach the text', async () => {
    const { modelPath } = await ensureTinyGemma4();
    const engine = await openEngine({ modelPath, sequences: 2, contextPerSequence: 512, prompt: 'gemma4' });
    expect(engine.info.chat).toBe(true);
    const plain = await engine.countPromptTokens({ prompt: PROMPT, input: 'x', thinking: false });
    const thinking = await engine.countPromptTokens({ prompt: PROMPT, input: 'x', thinking: true });
    expect(thinking).toBeGreaterThan(plain);
    const [a, b] = await Promise.all([
      engine.generate({ prompt: PROMPT, input: 'x', maxTokens: 12, thinking: true, includeThoughts: true }),
      engine.generate({ prompt: PROMPT, input: 'x', maxTokens: 12, thinking: false }),
    ]);
    expect(typeof a.thoughts).toBe('string');
    expect(b.thoughts).toBeUndefined();
    for (const r of [a, b]) expect(r.text).not.toMatch(/<\|channel>|<channel\|>|<\|think\|>/);
  });
});
