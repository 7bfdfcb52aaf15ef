import { performance } from 'node:perf_hooks';
import { deserializeError, GembatchError, type NodeCapability } from '@gembatch/contracts';
import { createLogger, type Logger } from '@gembatch/telemetry';
import { CLOSE_ABORT_GRACE_MS, DEFAULT_CLOSE_TIMEOUT_MS, settleWithin } from '../engine-close.ts';
import type { Engine, EngineInfo, EngineStats, GenerateRequest, GenerateResult } from '../engine.ts';
import { inspectModelFile, modelNameFor } from '../model-file.ts';
import { guardTokenListener } from '../token-listener.ts';
import type { GpuPreference } from './gpu-variant.ts';
import type { GenerateParams, HostInitOptions, HostMessage, HostReadyInfo, PromptCount } from './host-protocol.ts';
import { HostProcess, type RequestMessage } from './host-process.ts';
import type { LibVariant } from './llama-node-binding.ts';
import { checkMediaFiles } from './media-file-check.ts';
import { neutralizeControlText, planPrompt, type PromptPlan } from './prompt-plan.ts';
import { quantLabelFor } from './quant-label.ts';

export interface LlamaNodeEngineOptions {
  /** Text GGUF (`gemma4` architecture, or any model llama.cpp loads). */
  modelPath: string;
  /** Projector GGUF (`clip`; `gemma4uv`/`gemma4ua` for Gemma 4 12B), the `GEMBATCH_MMPROJ` file. */
  mmprojPath: string;
  /** Parallel slots decoding together (llama.cpp `n_parallel`); the worker's generate concurrency. */
  sequences: number;
  /** Context tokens of each slot (prompt + media + answer); the context holds `sequences ×` this. */
  contextPerSequence: number;
  /** CPU threads for llama.cpp. Defaults to llama.cpp's choice (half the logical CPUs); use `1` in tests. */
  threads?: number;
  /**
   * Which addon build to run: `cuda`/`vulkan` insist on that GPU (a clear `GB_ERR_MODEL_LOAD`
   * instead of the binding's silent CPU fallback), `auto` takes the first that sees a GPU and else
   * the CPU, `false` runs on CPU. Defaults to `'auto'`.
   */
  gpu?: GpuPreference;
  /** Layers to offload when on a GPU. Defaults to all of them. */
  gpuLayers?: number;
  /** Image token budget: larger images are scaled down to fit. Defaults to `280` (Gemma 4's default budget). */
  imageMaxTokens?: number;
  /** Smallest image token count: smaller images are scaled up. Defaults to the projector's own minimum (40 for Gemma 4). */
  imageMinTokens?: number;
  /**
   * Tokens per decode batch (`n_batch` = `n_ubatch`). Must hold the largest media chunk, since Gemma 4
   * attends over an image bidirectionally and a split image is silently wrong. Defaults to the larger
   * of `768` and `imageMaxTokens`.
   */
  batchSize?: number;
  /** pino logger for lifecycle lines (ids, sizes, timings, codes; never content). Defaults to a silent logger. */
  logger?: Logger;
  /**
   * Forward llama.cpp's own structural log lines to `logger` at debug level. Lines that echo
   * prompts are filtered, but llama.cpp's output is not designed for privacy: enable only to debug.
   * Defaults to `false` (llama.cpp's output is dropped; it never reaches this process's stdout).
   */
  nativeLog?: boolean;
  /** How long `close()` waits for active generations before cancelling them. Defaults to {@link DEFAULT_CLOSE_TIMEOUT_MS} (30 000 ms). */
  closeTimeoutMs?: number;
  /** `info.quant`. Defaults to the quantization in the file name, else the one llama.cpp describes (e.g. `Q4_K_M`). */
  quant?: string;
  /** `info.model`. Defaults to the file name without `.gguf`. */
  modelName?: string;
  /**
   * llama.cpp's fused flash-attention kernel: `true`, `false`, or `'auto'` (where the backend and
   * model support it). Defaults to `'auto'` on the CPU too, unlike the text engine: in this
   * addon's llama.cpp build turning it off made CPU decoding 2.6× slower on the tiny Gemma 4,
   * where node-llama-cpp's build is 1.7× faster off (`pnpm bench:flash-attention`).
   */
  flashAttention?: boolean | 'auto';
  /** How long loading the model may take. Defaults to `600_000` ms. */
  startTimeoutMs?: number;
}

/** Gemma 4's default image budget (its checkpoints offer 70/140/280/560/1120), and b10257's own default maximum. */
const DEFAULT_IMAGE_MAX_TOKENS = 280;
/** A 30 s audio segment is 750 tokens at 25 tokens/s; b10257 may attend over audio non-causally too. */
const MIN_BATCH_SIZE = 768;
/** llama.cpp's hard limit on sequences in one context (`LLAMA_MAX_SEQ`). */
const MAX_SEQUENCES = 256;
/** Below this not even a chat template and a short answer fit. */
const MIN_CONTEXT_PER_SEQUENCE = 64;
/** How long the host gets to free the model and exit before it is killed. */
const EXIT_TIMEOUT_MS = 15_000;

interface ActiveGeneration {
  id: number;
  started: boolean;
}

/**
 * Starts the multimodal engine: @fugood/llama.node with the text GGUF and its projector, in a
 * child process (see `engine-host.ts`), with `sequences` parallel slots. Fails with
 * `GB_ERR_CONFIG` for bad options and `GB_ERR_MODEL_LOAD` when the files, the projector or the
 * requested GPU cannot be used.
 */
export async function createLlamaNodeEngine(options: LlamaNodeEngineOptions): Promise<LlamaNodeEngine> {
  const init = resolveHostOptions(options);
  const logger = options.logger ?? createLogger({ service: 'inference', level: 'silent' });
  await inspectModelFile(init.modelPath, { role: 'text', option: 'modelPath' });
  await inspectModelFile(init.mmprojPath, { role: 'projector', option: 'mmprojPath' });
  const startedAt = performance.now();
  const { host, info } = await HostProcess.start(init, {
    logger,
    ...(options.nativeLog === undefined ? {} : { nativeLog: options.nativeLog }),
    ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
  });
  const names = {
    model: options.modelName ?? modelNameFor(init.modelPath),
    quant: options.quant ?? quantLabelFor(init.modelPath, info.modelDescription),
  };
  const engine = new LlamaNodeEngine(
    host,
    info,
    init,
    names,
    logger,
    options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
  );
  logger.info(
    {
      engine: 'llama.node',
      model: engine.info.model,
      quant: engine.info.quant,
      accelerator: info.accelerator,
      gpu: info.gpu,
      llamaBuild: info.llamaBuild,
      capabilities: engine.info.capabilities,
      sequences: init.sequences,
      contextPerSequence: init.contextPerSequence,
      batchSize: init.batchSize,
      imageMaxTokens: init.imageMaxTokens,
      ms: Math.round(performance.now() - startedAt),
    },
    'multimodal engine ready',
  );
  return engine;
}

/**
 * The multimodal engine (text, images, audio) behind the `Engine` interface. Media tokens are
 * counted exactly before a job runs; generations share the context's parallel slots.
 */
export class LlamaNodeEngine implements Engine {
  readonly info: EngineInfo;
  /** Decode batch size in use (`n_batch` = `n_ubatch`): no media chunk larger than this is accepted. */
  readonly batchSize: number;
  /** Image token budget in use. */
  readonly imageMaxTokens: number;
  /** Addon build in use. */
  readonly libVariant: LibVariant;
  /** llama.cpp build bundled in the addon (e.g. `b10257`). */
  readonly llamaBuild: string;

  #state: 'open' | 'closing' | 'closed' | 'failed' = 'open';
  #closing: Promise<void> | undefined;
  readonly #active = new Map<number, ActiveGeneration>();
  /** Every accepted call until it settles (close() drains these). */
  readonly #admitted = new Set<Promise<void>>();
  #promptTokensTotal = 0;
  #generationTokensTotal = 0;
  #peakActive = 0;

  readonly #host: HostProcess;
  readonly #ready: HostReadyInfo;
  readonly #options: HostInitOptions;
  readonly #logger: Logger;
  readonly #closeTimeoutMs: number;

  /** Use `createLlamaNodeEngine`. */
  constructor(
    host: HostProcess,
    ready: HostReadyInfo,
    options: HostInitOptions,
    names: Pick<EngineInfo, 'model' | 'quant'>,
    logger: Logger,
    closeTimeoutMs: number,
  ) {
    this.#host = host;
    this.#ready = ready;
    this.#options = options;
    this.#logger = logger;
    this.#closeTimeoutMs = closeTimeoutMs;
    const capabilities: NodeCapability[] = ['text'];
    if (ready.vision) capabilities.push('image');
    if (ready.audio) capabilities.push('audio');
    this.info = Object.freeze({
      engine: 'llama.node',
      model: names.model,
      quant: names.quant,
      accelerator: ready.accelerator,
      gpu: ready.gpu,
      capabilities,
      sequences: options.sequences,
      contextPerSequence: options.contextPerSequence,
      chat: ready.chat,
    });
    this.batchSize = options.batchSize;
    this.imageMaxTokens = options.imageMaxTokens;
    this.libVariant = ready.libVariant;
    this.llamaBuild = ready.llamaBuild;
    host.onUnexpectedExit(() => {
      this.#state = 'failed';
    });
  }

  /** Process id of the engine host, whose memory holds the model (for RAM gauges). */
  get hostPid(): number | undefined {
    return this.#host.pid;
  }

  /** Most generations seen on slots at once since start. */
  get peakActiveSequences(): number {
    return this.#peakActive;
  }

  generate(request: GenerateRequest): Promise<GenerateResult> {
    return this.#admit(() => this.#runGeneration(request));
  }

  async #runGeneration(request: GenerateRequest): Promise<GenerateResult> {
    if (!Number.isInteger(request.maxTokens) || request.maxTokens < 1) {
      throw new GembatchError(
        'GB_ERR_BAD_REQUEST',
        `maxTokens must be a positive integer (got ${String(request.maxTokens)})`,
      );
    }
    if (request.signal?.aborted)
      throw new GembatchError('GB_ERR_CANCELLED', 'generation was cancelled before it started');
    const plan = await this.#plan(request);
    if (this.#state === 'failed') this.#requireOpen();
    const params: GenerateParams = {
      maxTokens: request.maxTokens,
      temperature: request.temperature ?? 0,
      thinking: effectiveThinking(request),
      includeThoughts: request.includeThoughts ?? false,
      ignoreEos: request.ignoreEos ?? false,
      jsonSchema: request.jsonSchema,
    };
    const startedAt = performance.now();
    const onToken = guardTokenListener(request.onToken, this.#logger);
    let count: PromptCount | undefined;
    let generated = 0;
    let firstTokenAt: number | undefined;
    let lastTokenAt: number | undefined;
    return new Promise<GenerateResult>((resolve, reject) => {
      const onAbort = () => this.#host.send({ type: 'cancel', id });
      const finish = () => {
        this.#host.release(id);
        this.#active.delete(id);
        request.signal?.removeEventListener('abort', onAbort);
      };
      const onMessage = (message: HostMessage) => {
        switch (message.type) {
          case 'started':
            count = message.count;
            this.#markStarted(id);
            break;
          case 'token': {
            const now = performance.now();
            firstTokenAt ??= now;
            lastTokenAt = now;
            this.#generationTokensTotal += message.generated - generated;
            generated = message.generated;
            onToken(generated);
            break;
          }
          case 'generated': {
            finish();
            const outcome = message.outcome;
            this.#promptTokensTotal += outcome.evaluatedPromptTokens;
            this.#generationTokensTotal += Math.max(0, outcome.generatedTokens - generated);
            if (count && outcome.libraryPromptTokens !== count.promptTokens) {
              this.#logger.warn(
                { counted: count.promptTokens, evaluated: outcome.libraryPromptTokens },
                'prompt token count differs from what llama.node evaluated',
              );
            }
            resolve({
              text: outcome.text,
              finishReason: outcome.stoppedByLength ? 'length' : 'stop',
              promptTokens: outcome.libraryPromptTokens,
              generatedTokens: outcome.generatedTokens,
              mediaTokens: count?.mediaTokens ?? 0,
              timeToFirstTokenMs: firstTokenAt === undefined ? null : firstTokenAt - startedAt,
              interTokenMs:
                firstTokenAt !== undefined && lastTokenAt !== undefined && generated >= 2
                  ? (lastTokenAt - firstTokenAt) / (generated - 1)
                  : null,
              totalMs: performance.now() - startedAt,
              ...(outcome.thoughts === undefined ? {} : { thoughts: outcome.thoughts }),
            });
            break;
          }
          case 'failed':
            finish();
            reject(deserializeError(message.failure));
            break;
          default:
            break;
        }
      };
      const id = this.#host.request(
        (requestId) => ({ type: 'generate', id: requestId, plan, params }),
        onMessage,
        (error) => {
          finish();
          reject(error);
        },
      );
      this.#active.set(id, { id, started: false });
      request.signal?.addEventListener('abort', onAbort, { once: true });
      if (request.signal?.aborted) onAbort();
    });
  }

  /** Tokens the text takes in a prompt (control-token look-alikes defused, as `generate` does; no BOS). */
  countTokens(text: string): Promise<number> {
    const safe = neutralizeControlText(text);
    return this.#admit(() =>
      this.#ask(
        (id) => ({ type: 'count-text', id, text: safe }),
        (message) => (message.type === 'counted-text' ? message.tokens : undefined),
      ),
    );
  }

  /** Token ids of the text as it would enter a prompt (no BOS), for chunk planning. */
  tokenize(text: string): Promise<number[]> {
    const safe = neutralizeControlText(text);
    return this.#admit(() =>
      this.#ask(
        (id) => ({ type: 'tokenize', id, text: safe }),
        (message) => (message.type === 'tokenized' ? message.tokens : undefined),
      ),
    );
  }

  /** Text of token ids. */
  detokenize(tokens: readonly number[]): Promise<string> {
    const ids = [...tokens];
    return this.#admit(() =>
      this.#ask(
        (id) => ({ type: 'detokenize', id, tokens: ids }),
        (message) => (message.type === 'detokenized' ? message.text : undefined),
      ),
    );
  }

  countPromptTokens(request: Omit<GenerateRequest, 'maxTokens'>): Promise<number> {
    return this.#admit(async () => {
      const plan = await this.#plan(request);
      const thinking = effectiveThinking(request);
      return this.#ask(
        (id) => ({ type: 'count', id, plan, thinking }),
        (message) => (message.type === 'counted' ? message.count.promptTokens : undefined),
      );
    });
  }

  /**
   * Runs a call accepted while the engine is open; `close()` waits for every such call, including
   * those still checking their media, before it releases the model.
   */
  #admit<T>(work: () => Promise<T>): Promise<T> {
    try {
      this.#requireOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    const result = work();
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#admitted.add(settled);
    void settled.then(() => this.#admitted.delete(settled));
    return result;
  }

  stats(): EngineStats {
    return {
      activeSequences: this.#activeSequences(),
      promptTokensTotal: this.#promptTokensTotal,
      // llama.node clears its slots between jobs: every prompt token is evaluated.
      promptTokensReusedTotal: 0,
      promptTokensEvaluatedTotal: this.#promptTokensTotal,
      generationTokensTotal: this.#generationTokensTotal,
      // The binding decodes in its own thread and exposes no per-decode counters.
      decodeCallsTotal: 0,
      decodeTokensTotal: 0,
      fullDecodeCallsTotal: 0,
      decodeBatchTokens: new Map(),
      vramTotalBytes: this.#ready.vramTotalBytes,
      // Not exposed by the binding (no free-memory query per device).
      vramUsedBytes: 0,
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const wasFailed = this.#state === 'failed';
    this.#state = 'closing';
    const startedAt = performance.now();
    const drained = await settleWithin([...this.#admitted], this.#closeTimeoutMs);
    if (!drained) {
      this.#logger.warn(
        { active: this.#active.size, closeTimeoutMs: this.#closeTimeoutMs },
        'cancelling generations still running at close',
      );
      for (const generation of this.#active.values()) this.#host.send({ type: 'cancel', id: generation.id });
      await settleWithin([...this.#admitted], CLOSE_ABORT_GRACE_MS);
    }
    await this.#host.close(EXIT_TIMEOUT_MS);
    this.#state = 'closed';
    this.#logger.info(
      { engine: 'llama.node', ms: Math.round(performance.now() - startedAt), afterFailure: wasFailed },
      'multimodal engine closed',
    );
  }

  async #plan(request: Omit<GenerateRequest, 'maxTokens'>): Promise<PromptPlan> {
    const media = await checkMediaFiles(request.media ?? [], { image: this.#ready.vision, audio: this.#ready.audio });
    return planPrompt(request, media, this.#ready.chat);
  }

  #ask<T>(build: (id: number) => RequestMessage, pick: (message: HostMessage) => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.#host.request(
        build,
        (message) => {
          if (message.type === 'failed') {
            this.#host.release(id);
            reject(deserializeError(message.failure));
            return;
          }
          const value = pick(message);
          if (value === undefined) return;
          this.#host.release(id);
          resolve(value);
        },
        reject,
      );
    });
  }

  #markStarted(id: number): void {
    const generation = this.#active.get(id);
    if (generation) generation.started = true;
    this.#peakActive = Math.max(this.#peakActive, this.#activeSequences());
  }

  #activeSequences(): number {
    let started = 0;
    for (const generation of this.#active.values()) if (generation.started) started += 1;
    return Math.min(started, this.#options.sequences);
  }

  #requireOpen(): void {
    if (this.#state === 'open') return;
    if (this.#state === 'failed')
      throw new GembatchError(
        'GB_ERR_SERVICE_UNAVAILABLE',
        'the multimodal engine process has exited; the worker must restart it',
      );
    throw new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the multimodal engine is closed');
  }
}

function effectiveThinking(request: Omit<GenerateRequest, 'maxTokens'>): boolean {
  // A grammar would constrain the thoughts too, so constrained output never thinks.
  return (request.thinking ?? false) && request.jsonSchema === undefined;
}

function resolveHostOptions(options: LlamaNodeEngineOptions): HostInitOptions {
  const problems: string[] = [];
  const integer = (name: string, value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max))
      problems.push(`${name} must be an integer in ${min}..${max} (got ${String(value)})`);
  };
  integer('sequences', options.sequences, 1, MAX_SEQUENCES);
  integer('contextPerSequence', options.contextPerSequence, MIN_CONTEXT_PER_SEQUENCE);
  integer('threads', options.threads, 1);
  integer('gpuLayers', options.gpuLayers, 0);
  integer('imageMaxTokens', options.imageMaxTokens, 1);
  integer('imageMinTokens', options.imageMinTokens, 1);
  integer('batchSize', options.batchSize, 1);
  if (typeof options.modelPath !== 'string' || options.modelPath.length === 0) problems.push('modelPath is required');
  if (typeof options.mmprojPath !== 'string' || options.mmprojPath.length === 0)
    problems.push('mmprojPath is required (GEMBATCH_MMPROJ)');
  const gpu = options.gpu ?? 'auto';
  if (gpu !== false && gpu !== 'auto' && gpu !== 'cuda' && gpu !== 'vulkan')
    problems.push(`gpu must be auto, cuda, vulkan or false (got ${String(gpu)})`);
  const imageMaxTokens = options.imageMaxTokens ?? DEFAULT_IMAGE_MAX_TOKENS;
  if (options.imageMinTokens !== undefined && options.imageMinTokens > imageMaxTokens)
    problems.push(`imageMinTokens (${options.imageMinTokens}) exceeds imageMaxTokens (${imageMaxTokens})`);
  const batchSize = options.batchSize ?? Math.max(MIN_BATCH_SIZE, imageMaxTokens);
  if (batchSize < imageMaxTokens)
    problems.push(
      `batchSize (${batchSize}) must be at least imageMaxTokens (${imageMaxTokens}): Gemma 4 attends over a whole image at once, so an image must fit one batch`,
    );
  if (problems.length > 0)
    throw new GembatchError('GB_ERR_CONFIG', `invalid multimodal engine options: ${problems.join('; ')}`, {
      details: { problems },
    });
  return {
    modelPath: options.modelPath,
    mmprojPath: options.mmprojPath,
    sequences: options.sequences,
    contextPerSequence: options.contextPerSequence,
    threads: options.threads,
    gpu,
    gpuLayers: options.gpuLayers,
    imageMaxTokens,
    imageMinTokens: options.imageMinTokens,
    batchSize,
    flashAttention: options.flashAttention ?? 'auto',
  };
}
