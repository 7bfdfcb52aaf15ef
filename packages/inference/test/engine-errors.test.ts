import { describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { ensureTestModel, ensureTinyGemma4 } from '@gembatch/testing';
import { createLlamaCppEngine } from '../src/index.ts';
import { COMPLETION, corpusFile, openEngine } from './engine-fixture.ts';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GembatchError);
  return (error as GembatchError).code;
}

describe('engine failures are GembatchErrors, never crashes', () => {
  it('an input longer than the context is refused before generating (GB_ERR_CONTEXT_OVERFLOW)', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: 256,
    });
    const input = 'the model is good and the world is new '.repeat(40);
    expect(await engine.countPromptTokens({ prompt: COMPLETION, input })).toBeGreaterThan(256);
    expect(await codeOf(engine.generate({ prompt: COMPLETION, input, maxTokens: 8 }))).toBe('GB_ERR_CONTEXT_OVERFLOW');
    // Prompt fits but prompt + maxTokens does not: refused too, nothing silently shifted.
    expect(await codeOf(engine.generate({ prompt: COMPLETION, input: 'short', maxTokens: 300 }))).toBe(
      'GB_ERR_CONTEXT_OVERFLOW',
    );
    expect(engine.stats().decodeCallsTotal).toBe(0);
    // The engine still works afterwards.
    expect(
      (await engine.generate({ prompt: COMPLETION, input: 'short', maxTokens: 4, ignoreEos: true })).generatedTokens,
    ).toBe(4);
  });

  it('an aborted job fails with GB_ERR_CANCELLED and frees its sequence', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: 256,
    });
    const controller = new AbortController();
    const job = engine.generate({
      prompt: COMPLETION,
      input: 'a story',
      maxTokens: 200,
      ignoreEos: true,
      signal: controller.signal,
      onToken: (n) => n === 5 && controller.abort(),
    });
    expect(await codeOf(job)).toBe('GB_ERR_CANCELLED');
    expect(engine.stats().activeSequences).toBe(0);
    expect(
      (await engine.generate({ prompt: COMPLETION, input: 'next', maxTokens: 3, ignoreEos: true })).generatedTokens,
    ).toBe(3);
  });

  it('a throwing onToken listener does not break decoding: every token is still generated and counted', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 2,
      contextPerSequence: 256,
    });
    const seen: number[] = [];
    const throwing = engine.generate({
      prompt: COMPLETION,
      input: 'a story',
      maxTokens: 20,
      ignoreEos: true,
      onToken: (n) => {
        seen.push(n);
        throw new Error('progress sink broke');
      },
    });
    // A neighbour decoding in the same batches is not disturbed either.
    const neighbour = engine.generate({ prompt: COMPLETION, input: 'another story', maxTokens: 20, ignoreEos: true });
    const [result, other] = await Promise.all([throwing, neighbour]);
    expect(result.generatedTokens).toBe(20);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(other.generatedTokens).toBe(20);
    expect(engine.stats().activeSequences).toBe(0);
  });

  it('media on a text engine is GB_ERR_UNSUPPORTED_MEDIA; bad maxTokens is GB_ERR_BAD_REQUEST', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: 128,
    });
    expect(
      await codeOf(
        engine.generate({ prompt: COMPLETION, input: '', media: [{ kind: 'image', path: '/x.png' }], maxTokens: 4 }),
      ),
    ).toBe('GB_ERR_UNSUPPORTED_MEDIA');
    expect(await codeOf(engine.generate({ prompt: COMPLETION, input: 'x', maxTokens: 0 }))).toBe('GB_ERR_BAD_REQUEST');
  });

  it('a missing file, a projector and a tensor-less GGUF fail to load with GB_ERR_MODEL_LOAD', async () => {
    const base = { sequences: 1, contextPerSequence: 128, gpu: false as const, threads: 1 };
    expect(await codeOf(createLlamaCppEngine({ ...base, modelPath: '/nonexistent/model.gguf' }))).toBe(
      'GB_ERR_MODEL_LOAD',
    );
    const { mmprojPath } = await ensureTinyGemma4();
    await expect(createLlamaCppEngine({ ...base, modelPath: mmprojPath })).rejects.toThrow(/projector/);
    const vocabOnly = corpusFile('models/ggml-vocab-llama-spm.gguf');
    if (vocabOnly)
      expect(await codeOf(createLlamaCppEngine({ ...base, modelPath: vocabOnly }))).toBe('GB_ERR_MODEL_LOAD');
  });

  it('close waits for active jobs, is idempotent, and refuses new work', async () => {
    const engine = await createLlamaCppEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 2,
      contextPerSequence: 128,
      gpu: false,
      threads: 1,
    });
    const running = engine.generate({ prompt: COMPLETION, input: 'busy', maxTokens: 30, ignoreEos: true });
    const closing = [engine.close(), engine.close()];
    expect((await running).generatedTokens).toBe(30);
    await Promise.all(closing);
    expect(await codeOf(engine.generate({ prompt: COMPLETION, input: 'late', maxTokens: 2 }))).toBe(
      'GB_ERR_SERVICE_UNAVAILABLE',
    );
  });

  it('close aborts jobs that outlive its timeout with a retryable error', async () => {
    const engine = await createLlamaCppEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: 4096,
      gpu: false,
      threads: 1,
      closeTimeoutMs: 1,
    });
    let closed: Promise<void> | undefined;
    const running = engine.generate({
      prompt: COMPLETION,
      input: 'long',
      maxTokens: 4000,
      ignoreEos: true,
      onToken: (n) => void (n === 3 && (closed = engine.close())),
    });
    const error = await running.then(
      () => undefined,
      (e: unknown) => e as GembatchError,
    );
    await closed;
    expect(error?.code).toBe('GB_ERR_SERVICE_UNAVAILABLE');
    expect(error?.retryable).toBe(true);
  });
});
