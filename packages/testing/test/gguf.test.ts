import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import {
  getLlama,
  LlamaChatSession,
  LlamaCompletion,
  LlamaLogLevel,
  readGgufFileInfo,
  resolveChatWrapper,
  TokenBias,
  type Llama,
  type LlamaModel,
} from 'node-llama-cpp';
import {
  ensureCachedFile,
  ensureTestModel,
  GEMMA_STYLE_CHAT_TEMPLATE,
  TEST_MODELS,
  tempDir,
  testModelCacheDir,
  writeLlamaGguf,
  type LlamaGgufSpec,
} from '../src/index.ts';

/** Tokens generated per model: enough to run many decode steps, few enough to stay quick. */
const GENERATED_TOKENS = 24;

let llama: Llama;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn });
});

afterAll(async () => {
  await llama?.dispose();
});

async function loaded(modelPath: string): Promise<LlamaModel> {
  const model = await llama.loadModel({ modelPath });
  onTestFinished(() => model.dispose());
  return model;
}

function banEos(model: LlamaModel): TokenBias {
  const eos = model.tokens.eos;
  if (eos === null) throw new Error('the model has no EOS token');
  return new TokenBias(model.tokenizer).set(eos, 'never');
}

/** Generates exactly `count` tokens greedily with EOS banned; returns how many came out. */
async function generate(model: LlamaModel, prompt: string, count: number): Promise<number> {
  // One thread: tests may run on as few as two busy cores, where the default is 100× slower.
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  onTestFinished(() => context.dispose());
  const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
  let generated = 0;
  await completion.generateCompletion(prompt, {
    maxTokens: count,
    temperature: 0,
    repeatPenalty: false,
    tokenBias: banEos(model),
    onToken: (tokens) => {
      generated += tokens.length;
    },
  });
  return generated;
}

describe('writeLlamaGguf models in node-llama-cpp', () => {
  test.each(['f32', 'f16', 'q8_0'] as const)('%s loads and generates tokens', async (type) => {
    const path = await ensureTestModel({ ...TEST_MODELS.tiny, type });
    const info = await readGgufFileInfo(path);
    expect(info.version).toBe(3);
    expect(info.metadata.general.architecture).toBe('llama');
    const model = await loaded(path);
    expect(model.trainContextSize).toBe(4096);
    expect(await generate(model, 'The patient said that', GENERATED_TOKENS)).toBe(GENERATED_TOKENS);
  });

  test('text round-trips through tokenize and detokenize, and English words are single tokens', async () => {
    const model = await loaded(await ensureTestModel('tiny'));
    for (const text of [
      'The court said that the contract was signed.',
      'Ünïcødé ✓ 東京 and emoji 🙂',
      'tabs\tand\nnew lines\r\n  spaces  ',
      '{"json": [1, 2.5e-3, null]}',
    ]) {
      expect(model.detokenize(model.tokenize(text))).toBe(text);
    }
    for (const word of ['the', 'patient', 'contract', 'court', 'report', 'summary', 'document'])
      expect(model.tokenize(word)).toHaveLength(1);
    expect(model.tokenize('the patient said that the contract was good')).toHaveLength(8);
  });

  test('the tinyChat preset carries a chat template node-llama-cpp picks up', async () => {
    const path = await ensureTestModel('tinyChat');
    const model = await loaded(path);
    expect(model.fileInfo.metadata.tokenizer.chat_template).toBe(GEMMA_STYLE_CHAT_TEMPLATE);
    const wrapper = resolveChatWrapper(model);
    expect(wrapper?.wrapperName).toBe('Gemma');
    expect(model.tokenize('<start_of_turn>user', true)[0]).toBe(259);
    const context = await model.createContext({ contextSize: 256, threads: 1 });
    onTestFinished(() => context.dispose());
    const session = new LlamaChatSession({ contextSequence: context.getSequence() });
    expect(typeof (await session.prompt('Say hello.', { maxTokens: 8, temperature: 0 }))).toBe('string');
  });

  test('the bench preset is about 104 MiB and loads', async () => {
    const path = await ensureTestModel('bench');
    const bytes = (await stat(path)).size;
    expect(bytes / 2 ** 20).toBeGreaterThan(100);
    expect(bytes / 2 ** 20).toBeLessThan(108);
    const model = await loaded(path);
    expect(model.fileInsights.totalLayers).toBe(17);
    expect(await generate(model, 'the', 4)).toBe(4);
  });
});

describe('writeLlamaGguf output', () => {
  const small: LlamaGgufSpec = {
    layers: 1,
    embeddingLength: 64,
    feedForwardLength: 128,
    heads: 2,
    kvHeads: 1,
    contextLength: 512,
    vocabSize: 512,
    type: 'q8_0',
  };

  test('is deterministic for a spec and changes with the seed', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const sha = async (name: string, spec: LlamaGgufSpec) => {
      const summary = await writeLlamaGguf(join(dir.path, name), spec);
      expect(summary.bytes).toBe((await stat(summary.path)).size);
      return createHash('sha256')
        .update(await readFile(summary.path))
        .digest('hex');
    };
    const first = await sha('a.gguf', small);
    expect(await sha('b.gguf', small)).toBe(first);
    expect(await sha('c.gguf', { ...small, seed: 2 })).not.toBe(first);
  });

  test('reports its parameter count', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const summary = await writeLlamaGguf(join(dir.path, 'p.gguf'), small);
    const d = 64;
    const perLayer = 2 * d + d * d + 2 * d * 32 + d * d + 3 * d * 128;
    expect(summary.parameters).toBe(2 * 512 * d + perLayer + d);
  });

  test.each([
    [{ feedForwardLength: 100 }, /multiples of 32/],
    [{ heads: 3 }, /multiple of heads/],
    [{ kvHeads: 3, heads: 2 }, /multiple of kvHeads/],
    [{ layers: 0 }, /layers must be a positive integer/],
    [{ vocabSize: 100 }, /vocabSize must be at least/],
  ])('refuses %o with GB_ERR_BAD_REQUEST', async (change, message) => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    await expect(writeLlamaGguf(join(dir.path, 'bad.gguf'), { ...small, ...change })).rejects.toMatchObject({
      code: 'GB_ERR_BAD_REQUEST',
      message: expect.stringMatching(message),
    });
  });

  test('ensureCachedFile writes once for concurrent callers, atomically', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const target = join(dir.path, 'cache', 'model.gguf');
    let writes = 0;
    const write = async (tmp: string) => {
      writes++;
      await writeLlamaGguf(tmp, small);
    };
    const paths = await Promise.all([
      ensureCachedFile(target, write),
      ensureCachedFile(target, write),
      ensureCachedFile(target, write),
    ]);
    expect(paths).toEqual([target, target, target]);
    expect(writes).toBe(1);
    expect(await readdir(join(dir.path, 'cache'))).toEqual(['model.gguf']);
    expect(await ensureCachedFile(target, write)).toBe(target);
    expect(writes).toBe(1);
  });

  test('ensureTestModel caches by spec under node_modules/.cache and refuses unknown presets', async () => {
    const path = await ensureTestModel('tiny');
    expect(path.startsWith(testModelCacheDir())).toBe(true);
    expect(testModelCacheDir()).toMatch(/node_modules\/\.cache\/gembatch-test-models$/);
    expect(await ensureTestModel({ ...TEST_MODELS.tiny })).toBe(path);
    expect(await ensureTestModel({ ...TEST_MODELS.tiny, seed: 7 })).not.toBe(path);
    await expect(ensureTestModel('nope' as 'tiny')).rejects.toMatchObject({ code: 'GB_ERR_BAD_REQUEST' });
  });
});
