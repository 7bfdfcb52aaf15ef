import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { GembatchError } from '@gembatch/contracts';
import { createLogger } from '@gembatch/telemetry';
import {
  ensureTestModel,
  ensureTinyGemma4,
  tempDir,
  TEST_MODELS,
  type TempDir,
  type TinyGemma4Paths,
} from '@gembatch/testing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { GenerateRequest } from '../src/engine.ts';
import { createLlamaNodeEngine, type LlamaNodeEngine, type LlamaNodeEngineOptions } from '../src/multimodal/index.ts';

/**
 * The multimodal engine against a real GGUF pair: the tiny random-weight Gemma 4 "unified" model
 * and its gemma4uv/gemma4ua projector (output is gibberish by design; these tests check plumbing,
 * token counts, batching and errors). Media are generated here: sharp images, espeak-ng speech
 * resampled by ffmpeg to 16 kHz mono WAV.
 */

const run = promisify(execFile);
const prompt = {
  system: 'You describe documents.',
  instruction: 'Describe the input.',
  completionCue: '\nDescription:',
};
/** Planted in every input: it must never appear in any log line. */
const SECRET = 'SECRET-PATIENT-ZELDA-QUIXOTE';

interface Media {
  dir: TempDir;
  photo: string;
  tiny: string;
  vga: string;
  speech: string;
  speechSamples: number;
  webp: string;
  empty: string;
  corruptPng: string;
}

async function makeMedia(): Promise<Media> {
  const dir = await tempDir('gembatch-mm-');
  const file = (name: string) => path.join(dir.path, name);
  const noise = (width: number, height: number) =>
    sharp(Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 251)), {
      raw: { width, height, channels: 3 },
    });
  await noise(1600, 1200).jpeg().toFile(file('photo.jpg'));
  await noise(32, 32).png().toFile(file('tiny.png'));
  await noise(640, 480).jpeg().toFile(file('vga.jpg'));
  await noise(100, 100).webp().toFile(file('photo.webp'));
  await writeFile(file('empty.png'), new Uint8Array());
  const png = await readFile(file('tiny.png'));
  await writeFile(file('corrupt.png'), Buffer.concat([png.subarray(0, 16), Buffer.alloc(200, 0x5a)]));
  await run('espeak-ng', [
    '-w',
    file('speech-22k.wav'),
    'The patient was seen today for a follow up visit and is doing well.',
  ]);
  await run('ffmpeg', [
    '-nostdin',
    '-loglevel',
    'error',
    '-y',
    '-i',
    file('speech-22k.wav'),
    '-ac',
    '1',
    '-ar',
    '16000',
    '-c:a',
    'pcm_s16le',
    file('speech.wav'),
  ]);
  return {
    dir,
    photo: file('photo.jpg'),
    tiny: file('tiny.png'),
    vga: file('vga.jpg'),
    speech: file('speech.wav'),
    speechSamples: await wavSampleCount(file('speech.wav')),
    webp: file('photo.webp'),
    empty: file('empty.png'),
    corruptPng: file('corrupt.png'),
  };
}

/** Samples in a 16-bit mono WAV, read from its `data` chunk. */
async function wavSampleCount(file: string): Promise<number> {
  const wav = await readFile(file);
  let offset = 12;
  while (offset + 8 <= wav.length) {
    const id = wav.toString('ascii', offset, offset + 4);
    const size = wav.readUInt32LE(offset + 4);
    if (id === 'data') return size / 2;
    offset += 8 + size + (size % 2);
  }
  throw new Error('no data chunk');
}

/** Gemma 4 unified audio: one token per 640 samples (40 ms at 16 kHz). */
const audioTokens = (samples: number) => Math.ceil(samples / 640);

function captureLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { logger: createLogger({ service: 'test', level: 'debug', destination }), lines };
}

function request(overrides: Partial<GenerateRequest> = {}): GenerateRequest {
  return { prompt, input: `Notes about ${SECRET}.`, maxTokens: 8, ...overrides };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GembatchError);
    return (error as GembatchError).code;
  }
  throw new Error('expected a GembatchError');
}

const models: TinyGemma4Paths = await ensureTinyGemma4();

function baseOptions(overrides: Partial<LlamaNodeEngineOptions> = {}): LlamaNodeEngineOptions {
  return { ...models, sequences: 4, contextPerSequence: 1024, threads: 1, gpu: false, ...overrides };
}

async function startEngine(overrides: Partial<LlamaNodeEngineOptions> = {}): Promise<LlamaNodeEngine> {
  const engine = await createLlamaNodeEngine(baseOptions(overrides));
  onTestFinished(() => engine.close());
  return engine;
}

describe('multimodal engine (@fugood/llama.node, tiny Gemma 4)', () => {
  let media: Media;
  let engine: LlamaNodeEngine;
  const log = captureLogger();

  beforeAll(async () => {
    media = await makeMedia();
    engine = await createLlamaNodeEngine(baseOptions({ logger: log.logger, nativeLog: true }));
  });

  afterAll(async () => {
    await engine?.close();
    await media?.dir.cleanup();
  });

  it('reports what it runs and what it can take', () => {
    expect(engine.info).toEqual({
      engine: 'llama.node',
      model: path.basename(models.modelPath, '.gguf'),
      quant: 'F32',
      accelerator: 'cpu',
      gpu: 'cpu',
      capabilities: ['text', 'image', 'audio'],
      sequences: 4,
      contextPerSequence: 1024,
      chat: true,
    });
    expect(engine.llamaBuild).toBe('b10257');
    expect(engine.batchSize).toBeGreaterThanOrEqual(engine.imageMaxTokens);
  });

  it('answers a text-only request, with the prompt counted exactly beforehand', async () => {
    const counted = await engine.countPromptTokens(request());
    const result = await engine.generate(request());
    expect(typeof result.text).toBe('string');
    expect(result.generatedTokens).toBeGreaterThan(0);
    expect(result.generatedTokens).toBeLessThanOrEqual(8);
    expect(result.mediaTokens).toBe(0);
    expect(result.promptTokens).toBe(counted);
    expect(result.totalMs).toBeGreaterThan(0);
    expect(await engine.countTokens('hello world')).toBeGreaterThan(0);
  });

  it('answers an image request: media tokens known before it runs and equal to what ran', async () => {
    const withImage = request({ media: [{ kind: 'image', path: media.photo }] });
    const counted = await engine.countPromptTokens(withImage);
    const result = await engine.generate(withImage);
    // 1600×1200 → 912×672 px in 48-px patches = 266 tokens under b10257's 280-token budget.
    expect(result.mediaTokens).toBe(266);
    expect(result.promptTokens).toBe(counted);
    expect(result.promptTokens).toBeGreaterThan(result.mediaTokens);
    expect(result.generatedTokens).toBeGreaterThan(0);
  });

  it('answers an audio request at 25 tokens per second of speech', async () => {
    const withAudio = request({ input: '', media: [{ kind: 'audio', path: media.speech }] });
    const counted = await engine.countPromptTokens(withAudio);
    const result = await engine.generate(withAudio);
    expect(result.mediaTokens).toBe(audioTokens(media.speechSamples));
    expect(result.promptTokens).toBe(counted);
  });

  it('takes several media in one request and sums their tokens', async () => {
    const mixed = request({
      media: [
        { kind: 'image', path: media.tiny },
        { kind: 'audio', path: media.speech },
        { kind: 'image', path: media.vga },
      ],
    });
    const counted = await engine.countPromptTokens(mixed);
    const result = await engine.generate(mixed);
    // 32×32 is scaled up to the 40-token minimum grid (7×7 = 49); 640×480 → 624×480 = 13×10 = 130.
    expect(result.mediaTokens).toBe(49 + audioTokens(media.speechSamples) + 130);
    expect(result.promptTokens).toBe(counted);
  });

  it('decodes four requests on four slots together', async () => {
    const before = engine.stats();
    const requests = [media.photo, media.tiny, media.vga, media.speech].map((file, index) =>
      request({ maxTokens: 16, media: [{ kind: index === 3 ? 'audio' : 'image', path: file }] }),
    );
    const counted = await Promise.all(requests.map((r) => engine.countPromptTokens(r)));
    const results = await Promise.all(requests.map((r) => engine.generate(r)));
    expect(results.map((r) => r.promptTokens)).toEqual(counted);
    for (const result of results) expect(result.generatedTokens).toBeGreaterThan(0);
    const after = engine.stats();
    expect(after.generationTokensTotal - before.generationTokensTotal).toBe(
      results.reduce((sum, r) => sum + r.generatedTokens, 0),
    );
    expect(after.promptTokensTotal).toBeGreaterThan(before.promptTokensTotal);
    expect(after.activeSequences).toBe(0);
    expect(engine.peakActiveSequences).toBeGreaterThan(1);
  });

  it('refuses a request over the context with GB_ERR_CONTEXT_OVERFLOW, and countPromptTokens shows it first', async () => {
    const fourPhotos = request({
      media: Array.from({ length: 4 }, () => ({ kind: 'image' as const, path: media.photo })),
    });
    expect(await engine.countPromptTokens(fourPhotos)).toBeGreaterThan(1024);
    expect(await codeOf(engine.generate(fourPhotos))).toBe('GB_ERR_CONTEXT_OVERFLOW');
    const longText = request({ input: 'word '.repeat(400) });
    expect(await engine.countPromptTokens(longText)).toBeGreaterThan(1024);
    expect(await codeOf(engine.generate(longText))).toBe('GB_ERR_CONTEXT_OVERFLOW');
  });

  it('caps the answer at the room left in the sequence', async () => {
    const result = await engine.generate(request({ maxTokens: 5000, media: [{ kind: 'image', path: media.photo }] }));
    expect(result.promptTokens + result.generatedTokens).toBeLessThanOrEqual(1024);
  });

  it('constrains output with a JSON Schema, and refuses a schema llama.cpp cannot compile without crashing', async () => {
    const schema = { type: 'object', properties: { count: { type: 'integer' } }, required: ['count'] };
    const result = await engine.generate(request({ maxTokens: 40, jsonSchema: schema }));
    if (result.finishReason === 'stop')
      expect(Number.isInteger((JSON.parse(result.text) as { count: unknown }).count)).toBe(true);
    else expect(result.text.trimStart().startsWith('{')).toBe(true);
    expect(
      await codeOf(
        engine.generate(
          request({ jsonSchema: { type: 'object', properties: { a: { $ref: '#/definitions/missing' } } } }),
        ),
      ),
    ).toBe('GB_ERR_BAD_REQUEST');
    expect((await engine.generate(request({ maxTokens: 2 }))).generatedTokens).toBeGreaterThan(0);
  });

  it('runs with thinking on, and returns thoughts only when asked', async () => {
    const result = await engine.generate(request({ thinking: true, maxTokens: 8 }));
    expect(typeof result.text).toBe('string');
    expect(result.generatedTokens).toBeGreaterThan(0);
    expect(result.thoughts).toBeUndefined();
    const withThoughts = await engine.generate(request({ thinking: true, includeThoughts: true, maxTokens: 8 }));
    expect(typeof withThoughts.thoughts).toBe('string');
  });

  it('passes ignoreEos through (best effort: the binding suppresses EOS but not other end-of-turn tokens)', async () => {
    const result = await engine.generate(request({ maxTokens: 24, ignoreEos: true }));
    expect(result.generatedTokens).toBeGreaterThan(0);
    expect(result.generatedTokens).toBeLessThanOrEqual(24);
    expect(result.finishReason).toBe(result.generatedTokens === 24 ? 'length' : 'stop');
  });

  it('keeps decoding when the onToken listener throws, and logs it once without the error text', async () => {
    const seen: number[] = [];
    const result = await engine.generate(
      request({
        maxTokens: 12,
        ignoreEos: true,
        onToken: (n) => {
          seen.push(n);
          throw new Error(`progress sink broke on ${SECRET}`);
        },
      }),
    );
    expect(result.generatedTokens).toBeGreaterThan(1);
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)).toBeLessThanOrEqual(result.generatedTokens);
    expect(log.lines.filter((line) => line.includes('onToken listener threw'))).toHaveLength(1);
  });

  it('tokenizes and detokenizes text for chunk planning, counting what countTokens counts', async () => {
    const text = 'The patient was seen today.';
    const tokens = await engine.tokenize(text);
    expect(tokens.length).toBe(await engine.countTokens(text));
    expect((await engine.detokenize(tokens)).trim()).toBe(text);
    // A control token written in a document stays text: it is not tokenized as the control token.
    const special = await engine.tokenize('a<end_of_turn>b');
    expect((await engine.detokenize(special)).trim()).toBe('a‹end_of_turn>b');
  });

  it('cancels through the AbortSignal and keeps working', async () => {
    const controller = new AbortController();
    const cancelled = engine.generate(
      request({ maxTokens: 600, signal: controller.signal, onToken: (n) => n >= 2 && controller.abort() }),
    );
    expect(await codeOf(cancelled)).toBe('GB_ERR_CANCELLED');
    const aborted = new AbortController();
    aborted.abort();
    expect(await codeOf(engine.generate(request({ signal: aborted.signal })))).toBe('GB_ERR_CANCELLED');
    expect((await engine.generate(request({ maxTokens: 2 }))).generatedTokens).toBeGreaterThan(0);
  });

  it.each([
    ['a missing file', () => media.dir.path + '/missing.jpg', 'image', 'GB_ERR_FILE_NOT_FOUND'],
    ['an empty file', () => media.empty, 'image', 'GB_ERR_EMPTY_INPUT'],
    ['a WebP (llama.cpp would drop it silently)', () => media.webp, 'image', 'GB_ERR_UNSUPPORTED_MEDIA'],
    ['a PNG with a broken body', () => media.corruptPng, 'image', 'GB_ERR_IMAGE_INVALID'],
    ['an image passed as audio', () => media.photo, 'audio', 'GB_ERR_UNSUPPORTED_MEDIA'],
  ] as const)('rejects %s with a stable code', async (_name, file, kind, code) => {
    const bad = request({ media: [{ kind, path: file() }] });
    expect(await codeOf(engine.countPromptTokens(bad))).toBe(code);
    expect(await codeOf(engine.generate(bad))).toBe(code);
  });

  it('refuses audio longer than one decode batch instead of splitting it', async () => {
    const long = path.join(media.dir.path, 'tone-35s.wav');
    await run('ffmpeg', [
      '-nostdin',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:duration=35',
      '-ac',
      '1',
      '-ar',
      '16000',
      long,
    ]);
    // 35 s × 25 tokens/s = 875 tokens > the 768-token batch.
    await expect(engine.countPromptTokens(request({ media: [{ kind: 'audio', path: long }] }))).rejects.toMatchObject({
      code: 'GB_ERR_AUDIO_TOO_LONG',
      details: { tokens: 875 },
    });
  });

  it('names which of several media is broken', async () => {
    const bad = request({
      media: [
        { kind: 'image', path: media.tiny },
        { kind: 'image', path: media.corruptPng },
      ],
    });
    await expect(engine.generate(bad)).rejects.toMatchObject({
      code: 'GB_ERR_IMAGE_INVALID',
      details: { index: 1, kind: 'image' },
    });
  });

  it('rejects a bad maxTokens', async () => {
    expect(await codeOf(engine.generate(request({ maxTokens: 0 })))).toBe('GB_ERR_BAD_REQUEST');
  });

  it("sends llama.cpp's output to the logger at debug, never prompts, outputs or the secret", () => {
    const native = log.lines.filter((line) => line.includes('"msg":"llama.cpp"'));
    expect(native.length).toBeGreaterThan(0);
    expect(native.every((line) => line.includes('"level":"debug"'))).toBe(true);
    expect(log.lines.some((line) => line.includes('multimodal engine ready'))).toBe(true);
    expect(log.lines.filter((line) => line.includes(SECRET))).toEqual([]);
    expect(log.lines.filter((line) => line.includes('Describe the input'))).toEqual([]);
  });
});

describe('multimodal engine: image token budget', () => {
  let media: Media;
  beforeAll(async () => {
    media = await makeMedia();
  });
  afterAll(async () => {
    await media?.dir.cleanup();
  });

  it('scales an image that exceeds the budget down to it, in one decode batch', async () => {
    const engine = await startEngine({ imageMaxTokens: 70, sequences: 1, contextPerSequence: 512 });
    const photo = request({ media: [{ kind: 'image', path: media.photo }] });
    const result = await engine.generate(photo);
    // The same photo takes 266 tokens under the default budget (see above).
    expect(result.mediaTokens).toBeGreaterThan(0);
    expect(result.mediaTokens).toBeLessThanOrEqual(70);
    expect(result.mediaTokens).toBeLessThanOrEqual(engine.batchSize);
    expect(result.promptTokens).toBe(await engine.countPromptTokens(photo));
  });

  it('refuses a batch smaller than the image budget (the image would be split)', async () => {
    expect(await codeOf(createLlamaNodeEngine(baseOptions({ imageMaxTokens: 560, batchSize: 512 })))).toBe(
      'GB_ERR_CONFIG',
    );
  });
});

describe('multimodal engine: model without a chat template', () => {
  let media: Media;
  beforeAll(async () => {
    media = await makeMedia();
  });
  afterAll(async () => {
    await media?.dir.cleanup();
  });

  it('builds a completion prompt with media markers and counts it exactly', async () => {
    // A tiny llama without a chat template, 64 wide like the tiny Gemma 4 projector's output.
    const modelPath = await ensureTestModel({ ...TEST_MODELS.tiny, embeddingLength: 64, name: 'gembatch-tiny-64' });
    const engine = await startEngine({ modelPath, sequences: 2, contextPerSequence: 512 });
    expect(engine.info.chat).toBe(false);
    const withMedia = request({
      media: [
        { kind: 'image', path: media.photo },
        { kind: 'audio', path: media.speech },
      ],
    });
    const counted = await engine.countPromptTokens(withMedia);
    const result = await engine.generate(withMedia);
    expect(result.mediaTokens).toBe(266 + audioTokens(media.speechSamples));
    expect(result.promptTokens).toBe(counted);
    expect(result.generatedTokens).toBeGreaterThan(0);
  });
});

describe('multimodal engine: lifecycle and faults', () => {
  it('close() waits for active generations, is idempotent, and refuses work afterwards', async () => {
    const log = captureLogger();
    const engine = await createLlamaNodeEngine(baseOptions({ sequences: 2, logger: log.logger }));
    const running = engine.generate(request({ maxTokens: 32 }));
    const closing = engine.close();
    const result = await running;
    expect(result.generatedTokens).toBeGreaterThan(0);
    await Promise.all([closing, engine.close()]);
    await engine.close();
    expect(await codeOf(engine.generate(request()))).toBe('GB_ERR_SERVICE_UNAVAILABLE');
    expect(await codeOf(engine.countTokens('x'))).toBe('GB_ERR_SERVICE_UNAVAILABLE');
    // llama.cpp's own output is off by default: only the engine's lifecycle lines were logged.
    expect(log.lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toEqual([
      'multimodal engine ready',
      'multimodal engine closed',
    ]);
  });

  it('survives the engine process dying: in-flight work fails retryably, later work is refused', async () => {
    const engine = await startEngine({ sequences: 1 });
    const running = engine.generate(
      request({ maxTokens: 600, onToken: (n) => n === 1 && process.kill(engine.hostPid ?? 0, 'SIGKILL') }),
    );
    await expect(running).rejects.toMatchObject({ code: 'GB_ERR_INFERENCE', retryable: true });
    expect(await codeOf(engine.generate(request()))).toBe('GB_ERR_SERVICE_UNAVAILABLE');
    await engine.close();
  });

  it.each(['cuda', 'vulkan'] as const)('never falls back to CPU silently when gpu %s is asked for', async (gpu) => {
    try {
      const engine = await startEngine({ gpu, sequences: 1 });
      expect(engine.info.accelerator).toBe(gpu);
    } catch (error) {
      expect(error).toMatchObject({ code: 'GB_ERR_MODEL_LOAD', message: expect.stringContaining(gpu) });
    }
  });

  it('with gpu auto, takes a GPU build only when it sees a GPU, else the CPU build', async () => {
    const engine = await startEngine({ gpu: 'auto', sequences: 1, contextPerSequence: 256 });
    expect(engine.info.accelerator === 'cpu').toBe(engine.libVariant === 'default');
    expect((await engine.generate(request({ maxTokens: 2 }))).generatedTokens).toBeGreaterThan(0);
  });

  it.skipIf(process.platform !== 'linux')(
    'starts the engine host with a minimal environment: a secret in the parent never reaches it',
    async () => {
      const secrets = {
        REDIS_URL: 'redis://:host-secret@redis:6379',
        HF_TOKEN: 'hf_host_secret',
        GGML_SCHED_MAX_COPIES: '4',
      };
      const saved = Object.fromEntries(Object.keys(secrets).map((name) => [name, process.env[name]]));
      Object.assign(process.env, secrets);
      onTestFinished(() => {
        for (const [name, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      });
      const engine = await startEngine({ sequences: 1, contextPerSequence: 256 });
      const environ = (await readFile(`/proc/${engine.hostPid}/environ`, 'utf8')).split('\0');
      expect(environ).toContain('GGML_SCHED_MAX_COPIES=4');
      expect(environ.some((entry) => entry.startsWith('PATH='))).toBe(true);
      expect(environ.some((entry) => /^(REDIS_URL|HF_TOKEN)=/.test(entry) || entry.includes('host-secret'))).toBe(
        false,
      );
    },
  );

  it('refuses files that are not a model and its projector', async () => {
    expect(await codeOf(createLlamaNodeEngine(baseOptions({ modelPath: models.mmprojPath })))).toBe(
      'GB_ERR_MODEL_LOAD',
    );
    expect(await codeOf(createLlamaNodeEngine(baseOptions({ mmprojPath: models.modelPath })))).toBe(
      'GB_ERR_MODEL_LOAD',
    );
    expect(await codeOf(createLlamaNodeEngine(baseOptions({ modelPath: '/nonexistent/model.gguf' })))).toBe(
      'GB_ERR_MODEL_LOAD',
    );
    expect(await codeOf(createLlamaNodeEngine(baseOptions({ sequences: 0 })))).toBe('GB_ERR_CONFIG');
  });
});
