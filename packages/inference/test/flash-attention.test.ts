import { describe, expect, it } from 'vitest';
import { ensureTestModel } from '@gembatch/testing';
import type { GenerateRequest, LlamaCppEngine } from '../src/index.ts';
import { capturedLogger, corpusFile, openEngine } from './engine-fixture.ts';

/** A trained model: its greedy output does not flip on float rounding (see prefix-reuse.test.ts). */
const STORIES = corpusFile('models/stories260K.gguf');

/** An engine whose `engine ready` line is kept, to read what llama.cpp's context was created with. */
async function openLogged(
  options: Parameters<typeof openEngine>[0],
): Promise<{ engine: LlamaCppEngine; ready: Record<string, unknown> }> {
  const { logger, lines } = capturedLogger();
  const engine = await openEngine({ ...options, logger });
  const ready = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((l) => l.msg === 'engine ready');
  if (!ready) throw new Error('no "engine ready" line');
  return { engine, ready };
}

describe('flash attention (real model, CPU)', () => {
  it('is off by default on the CPU and on when asked (what the context was created with)', async () => {
    const modelPath = await ensureTestModel('tiny');
    const base = { modelPath, sequences: 2, contextPerSequence: 256 };
    expect((await openLogged(base)).ready.flashAttention).toBe(false);
    expect((await openLogged({ ...base, flashAttention: true })).ready.flashAttention).toBe(true);
  });

  it('gives the same greedy outputs on and off', async (context) => {
    if (!STORIES) return context.skip('corpus absent: models/stories260K.gguf');
    const base = { modelPath: STORIES, sequences: 4, contextPerSequence: 512 };
    const requests: GenerateRequest[] = Array.from({ length: 4 }, (_, i) => ({
      prompt: { system: '', instruction: 'Once upon a time, there was a little', completionCue: '' },
      input: ` girl number ${i} who`,
      maxTokens: 24,
      ignoreEos: true,
    }));
    const run = async (engine: LlamaCppEngine) =>
      (await Promise.all(requests.map((r) => engine.generate(r)))).map((r) => r.text);
    const off = await run((await openLogged({ ...base, flashAttention: false })).engine);
    expect(await run((await openLogged({ ...base, flashAttention: true })).engine)).toEqual(off);
  });
});
