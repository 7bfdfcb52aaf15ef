import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { getLlama, LlamaCompletion, LlamaLogLevel, TokenBias, type Llama } from 'node-llama-cpp';
import { createRequire } from 'node:module';
import {
  ensureTinyGemma4,
  findRepoRoot,
  readGgufHeader,
  tempDir,
  writeTinyGemma4,
  type GgufHeader,
  type TinyGemma4Paths,
} from '../src/index.ts';

/**
 * @fugood/llama.node ships TypeScript sources as its types, which do not compile under this repo's
 * settings; the few calls used here are typed locally instead.
 */
interface TokenizeResult {
  has_media: boolean;
  chunk_pos: number[];
  chunk_pos_media: number[];
  tokens: ArrayLike<number>;
}
interface LlamaNodeContext {
  initMultimodal(options: { path: string; use_gpu: boolean }): Promise<boolean>;
  getMultimodalSupport(): { vision: boolean; audio: boolean };
  tokenize(text: string, options: { media_paths: string[] }): Promise<TokenizeResult>;
  release(): Promise<void>;
  releaseMultimodal(): Promise<void>;
}
const { loadModel, toggleNativeLog } = createRequire(import.meta.url)('@fugood/llama.node') as {
  loadModel: (options: Record<string, unknown>) => Promise<LlamaNodeContext>;
  toggleNativeLog: (enabled: boolean) => Promise<void>;
};

const corpusDir = resolve(findRepoRoot(), process.env.GEMBATCH_CORPUS_DIR ?? '../shared/corpus');
const corpusModels = join(corpusDir, 'models');
const haveCorpus =
  existsSync(join(corpusModels, 'tiny-gemma4u.gguf')) && existsSync(join(corpusModels, 'mmproj-tiny-gemma4u.gguf'));

/** Everything but the weights: keys with exact types and values, tensor names, shapes, types and offsets. */
function layout(header: GgufHeader) {
  return {
    version: header.version,
    metadata: [...header.metadata].map(([key, entry]) => ({
      key,
      type: entry.type,
      length: entry.length,
      value: entry.value,
    })),
    tensors: header.tensors,
  };
}

/** A 16 kHz mono 16-bit WAV of a 440 Hz tone. */
function toneWav(seconds: number): Buffer {
  const rate = 16_000;
  const samples = Math.round(seconds * rate);
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0, 'latin1');
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write('WAVEfmt ', 8, 'latin1');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36, 'latin1');
  wav.writeUInt32LE(samples * 2, 40);
  // 440 Hz at a third of full scale.
  for (let i = 0; i < samples; i++)
    wav.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 10_000), 44 + i * 2);
  return wav;
}

/** Token count of the one media chunk: from its start to the next chunk's start. */
function mediaTokens(result: { chunk_pos: number[]; chunk_pos_media: number[] }): number {
  const start = result.chunk_pos_media[0] ?? Number.NaN;
  const next = result.chunk_pos.find((position) => position > start) ?? Number.NaN;
  return next - start;
}

let paths: TinyGemma4Paths;

beforeAll(async () => {
  paths = await ensureTinyGemma4();
});

describe('writeTinyGemma4', () => {
  test.skipIf(!haveCorpus)('matches the corpus files in every key, tensor name, shape, type and offset', async () => {
    expect(layout(await readGgufHeader(paths.modelPath))).toEqual(
      layout(await readGgufHeader(join(corpusModels, 'tiny-gemma4u.gguf'))),
    );
    expect(layout(await readGgufHeader(paths.mmprojPath))).toEqual(
      layout(await readGgufHeader(join(corpusModels, 'mmproj-tiny-gemma4u.gguf'))),
    );
  });

  test('writes both files into a directory, projector types gemma4uv and gemma4ua', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const written = await writeTinyGemma4(join(dir.path, 'models'));
    const model = await readGgufHeader(written.modelPath);
    const projector = await readGgufHeader(written.mmprojPath);
    expect(model.metadata.get('general.architecture')?.value).toBe('gemma4');
    expect(projector.metadata.get('clip.vision.projector_type')?.value).toBe('gemma4uv');
    expect(projector.metadata.get('clip.audio.projector_type')?.value).toBe('gemma4ua');
  });
});

describe('tiny Gemma 4 in node-llama-cpp', () => {
  let llama: Llama;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn });
  });
  afterAll(async () => {
    await llama?.dispose();
  });

  test('loads as gemma4 and generates tokens', async () => {
    const model = await llama.loadModel({ modelPath: paths.modelPath });
    onTestFinished(() => model.dispose());
    expect(model.fileInfo.metadata.general.architecture).toBe('gemma4');
    const context = await model.createContext({ contextSize: 256, threads: 1 });
    onTestFinished(() => context.dispose());
    const bias = new TokenBias(model.tokenizer);
    // Random weights may pick any end-of-generation token; ban them all to get a fixed count.
    for (const token of [model.tokens.eos, ...model.tokenize('<end_of_turn><start_of_turn>', true)])
      if (token !== null) bias.set(token, 'never');
    let generated = 0;
    await new LlamaCompletion({ contextSequence: context.getSequence() }).generateCompletion('Describe the image', {
      maxTokens: 16,
      temperature: 0,
      repeatPenalty: false,
      tokenBias: bias,
      onToken: (tokens) => {
        generated += tokens.length;
      },
    });
    expect(generated).toBe(16);
  });
});

describe('tiny Gemma 4 in @fugood/llama.node', () => {
  test('initMultimodal supports vision and audio, and media tokenizes into media chunks', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const png = join(dir.path, 'tiny.png');
    await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 200, g: 30, b: 90 } } })
      .png()
      .toFile(png);
    const wav = join(dir.path, 'tone.wav');
    await writeFile(wav, toneWav(1));

    // Routes llama.cpp's log to JS listeners (there are none) instead of stdout.
    await toggleNativeLog(true);
    // n_batch/n_ubatch 2048: an image's tokens must fit one ubatch (non-causal attention over it).
    const context = await loadModel({
      model: paths.modelPath,
      n_ctx: 2048,
      n_batch: 2048,
      n_ubatch: 2048,
      n_gpu_layers: 0,
      n_threads: 1,
    });
    onTestFinished(() => context.release());
    expect(await context.initMultimodal({ path: paths.mmprojPath, use_gpu: false })).toBe(true);
    onTestFinished(() => context.releaseMultimodal());
    expect(context.getMultimodalSupport()).toEqual({ vision: true, audio: true });

    const image = await context.tokenize('Describe <__media__>', { media_paths: [png] });
    expect(image.has_media).toBe(true);
    expect(image.chunk_pos_media).toHaveLength(1);
    // A 32×32 image is upscaled to the minimum budget: 7×7 patches of 48 px = 49 tokens (llama.cpp b10257).
    expect(mediaTokens(image)).toBe(49);

    const audio = await context.tokenize('Transcribe <__media__>', { media_paths: [wav] });
    expect(audio.has_media).toBe(true);
    expect(audio.chunk_pos_media).toHaveLength(1);
    // gemma4ua: one token per 640 samples (40 ms), so 1 s of 16 kHz audio is 25 tokens.
    expect(mediaTokens(audio)).toBe(25);
  });
});
