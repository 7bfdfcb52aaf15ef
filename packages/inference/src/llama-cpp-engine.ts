import { setMaxListeners } from 'node:events';
import path from 'node:path';
import {
  DisposedError,
  DraftSequenceTokenPredictor,
  InsufficientMemoryError,
  isLlamaText,
  LlamaGrammarEvaluationState,
  TokenBias,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { GembatchError, toGembatchError, errorMessage } from '@gembatch/contracts';
import type { Logger } from '@gembatch/telemetry';
import { DecodeCounters } from './decode-counters.ts';
import { DirectSteps } from './direct-steps.ts';
import { StepClock } from './step-clock.ts';
import { CLOSE_ABORT_GRACE_MS, DEFAULT_CLOSE_TIMEOUT_MS, settleWithin } from './engine-close.ts';
import type { Engine, EngineInfo, EngineStats, FinishReason, GenerateRequest, GenerateResult } from './engine.ts';
import { acceleratorOf, defaultThreads, loadLlama, type GpuOption } from './load-llama.ts';
import { LockstepBarrier } from './lockstep-barrier.ts';
import { inspectModelFile, modelNameFor } from './model-file.ts';
import { OutputTracker } from './output-tracker.ts';
import { PrefixSnapshots, sharedPrefixLength, type PendingSnapshot, type PrefixSnapshot } from './prefix-snapshots.ts';
import { PromptFormat, type PromptMode } from './prompt-format.ts';
import { SequencePool } from './sequence-pool.ts';
import { guardTokenListener } from './token-listener.ts';

export interface LlamaCppEngineOptions {
  /** Local GGUF file. */
  modelPath: string;
  /** Sequences (parallel jobs) wanted; halved while the context does not fit, see `info.sequences`. */
  sequences: number;
  /** Context tokens per sequence. */
  contextPerSequence: number;
  /** Decode threads. Defaults to one per math core left after Node's thread on CPU, node-llama-cpp's math-core count on a GPU. */
  threads?: number;
  /** Backend. Defaults to `auto`. */
  gpu?: GpuOption;
  /** Layers on the GPU. Defaults to `auto` (node-llama-cpp fits as many as memory allows). */
  gpuLayers?: number | 'auto' | 'max';
  /** Tokens per decode batch. Defaults to node-llama-cpp's (512, at least `sequences`). */
  batchSize?: number;
  /** Draft model for speculative decoding. Defaults to none (off). */
  draftModelPath?: string;
  /** Operational log (ids, sizes, timings; never text). Defaults to silence. */
  logger?: Logger;
  /**
   * Most memory llama.cpp may plan with (VRAM on a GPU, RAM on CPU): a context beyond it fails as
   * a real shortage would, and the engine halves its sequences. Defaults to no cap.
   */
  memoryLimitBytes?: number;
  /** Advance all active sequences together, one token each per decode. Defaults to `true` (`false` with a draft model). */
  lockstep?: boolean;
  /** Shortest context per sequence to fall back to when one sequence does not fit. Defaults to `512`. */
  minContextPerSequence?: number;
  /** How long `close()` waits for active generations before aborting them. Defaults to {@link DEFAULT_CLOSE_TIMEOUT_MS} (30 000 ms). */
  closeTimeoutMs?: number;
  /**
   * Prompt building: `auto` uses the GGUF's chat template (completion mode without one), `gemma4` forces Gemma 4's,
   * `completion` forces plain text. Defaults to `auto`.
   */
  prompt?: PromptMode;
  /** `info.quant`. Defaults to the GGUF's file type (e.g. `Q8_0`). */
  quant?: string;
  /** `info.model`. Defaults to the file name without `.gguf`. */
  modelName?: string;
  /**
   * Keep each sequence's tokens after a job and evaluate only what the next job's prompt does not
   * share with them (prefix reuse: a shared system prompt, instruction and schema are evaluated
   * once per sequence, not once per job). Defaults to `true` (`false` with a draft model, whose
   * predictions interleave with the kept tokens in ways not tested here).
   */
  prefixReuse?: boolean;
  /**
   * With prefix reuse: a prompt prefix shared by several jobs is evaluated once per engine, not
   * once per sequence; its KV state is saved and loaded into the other sequences (see
   * {@link PrefixSnapshots}). Defaults to `true` on the CPU, where loading is a memory copy and
   * evaluating is the cost; `false` on a GPU, where evaluating a prefix is fast and the load
   * copies the state through host memory (not measured on a GPU here). Off for models whose KV
   * cache cannot be cut at any token (sliding-window caches without a full cache, recurrent).
   */
  prefixSnapshots?: boolean;
  /** Directory for prefix snapshots. Defaults to `/dev/shm` where it has 1 GiB free, else the OS temp dir. */
  prefixSnapshotDir?: string;
  /**
   * Most prompt tokens a joining job adds to one decode step while other sequences are generating
   * (chunked prefill: a long prompt does not stall the running sequences for its whole length);
   * `0` evaluates every prompt at once. Defaults to {@link defaultPrefillChunkTokens}.
   */
  prefillChunkTokens?: number;
  /**
   * llama.cpp's fused flash-attention kernel: `true`, `false`, or `'auto'` (used where the backend
   * and model support it). Defaults to {@link defaultFlashAttention}.
   */
  flashAttention?: boolean | 'auto';
}

/**
 * Default prompt tokens per decode step while other sequences generate. Why: llama.cpp keeps each
 * sequence's KV cache in its own stream, so a prompt chunk is a forward pass of its own beside the
 * generating sequences' one, with a fixed cost of reading the weights: on the CPU (104 MiB Q8_0
 * model, 16 sequences) a generation step cost 49 ms, one with a 16-token chunk 134 ms, with 64
 * tokens 311 ms. Small chunks add passes: 64 ingests a typical prompt in one or two steps. With
 * answers of different lengths (jobs joining running steps) 64 gave 1.12–1.18× the tok/s of 16 on
 * that model, for an inter-token p99 ÷ steady of 4.1 against 2.1–2.8: the default is for
 * throughput, and a lower cap buys flatter latency with it. A GPU step costs about the same up to
 * a few hundred tokens, so 256 there (half llama.cpp's default 512-token batch).
 */
function defaultPrefillChunkTokens(accelerator: EngineInfo['accelerator'], sequences: number): number {
  return accelerator === 'cpu' ? Math.max(64, sequences) : 256;
}

/**
 * Default flash attention. Why off on the CPU: node-llama-cpp's llama.cpp build has a CPU
 * flash-attention kernel that visits every KV cell of a query row one dot product and one `exp`
 * at a time, where the unfused path multiplies whole matrices (perf put 64 % of the engine's time
 * in it). `pnpm bench:flash-attention`, off ÷ on tok/s: tiny Gemma 4 1.72, stories260K 2.22, the
 * 104 MiB Q8_0 model 1.03. `'auto'` on a GPU: llama.cpp's default, where the fused kernel is the
 * fast path and saves the attention matrix's memory (not measured here).
 */
function defaultFlashAttention(accelerator: EngineInfo['accelerator']): boolean | 'auto' {
  return accelerator === 'cpu' ? false : 'auto';
}

/** The engines' `flashAttention` for a `GEMBATCH_FLASH_ATTENTION`-style setting (`auto`, `on`, `off`). */
export function flashAttentionOption(setting: 'auto' | 'on' | 'off'): boolean | 'auto' {
  return setting === 'auto' ? 'auto' : setting === 'on';
}

/** Distinct JSON Schemas whose grammars are kept compiled. */
const GRAMMAR_CACHE_SIZE = 64;
/** Fallback floor for the context when one sequence does not fit. */
const DEFAULT_MIN_CONTEXT = 512;

interface DraftParts {
  model: LlamaModel;
  context: LlamaContext;
  predictors: DraftSequenceTokenPredictor[];
}

interface PooledSequence {
  /** Index in creation order, which is node-llama-cpp's sequence id (it hands out 0, 1, 2, ...). */
  sequenceId: number;
  sequence: LlamaContextSequence;
}

/**
 * Creates the text engine: loads the model once, creates one context with S sequences (halving S
 * while the context does not fit) and serves `generate` calls with batched decoding.
 */
export function createLlamaCppEngine(options: LlamaCppEngineOptions): Promise<LlamaCppEngine> {
  return LlamaCppEngine.create(options);
}

/**
 * node-llama-cpp text engine with lock-step batched decoding: each job holds one sequence of a
 * shared context; active sequences advance together so every decode carries all of them in
 * sequence order (node-llama-cpp is patched to add them in that order, see README); a new job
 * joins at the next step and a finished one frees its sequence at once.
 */
export class LlamaCppEngine implements Engine {
  readonly info: EngineInfo;
  readonly #llama: Llama;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #draft: DraftParts | undefined;
  readonly #format: PromptFormat;
  readonly #pool: SequencePool<PooledSequence>;
  readonly #barrier: LockstepBarrier;
  readonly #clock: StepClock | undefined;
  readonly #counters: DecodeCounters;
  readonly #lockstep: boolean;
  readonly #log: Logger | undefined;
  readonly #closeTimeoutMs: number;
  readonly #grammars = new Map<string, Promise<LlamaGrammar | undefined>>();
  readonly #active = new Set<Promise<unknown>>();
  readonly #closeController = new AbortController();
  readonly #stats = {
    promptTokens: 0,
    promptTokensReused: 0,
    promptTokensEvaluated: 0,
    generationTokens: 0,
    vramTotal: 0,
    vramUsed: 0,
  };
  readonly #generating: { count: number };
  readonly #prefixReuse: boolean;
  readonly #snapshots: PrefixSnapshots | undefined;
  readonly #prefillChunkTokens: number;
  /** Jobs past their prompt (generating tokens): a joining prompt is chunked only while there are some. */
  #decoding = 0;
  /** Prompt tokens still allowed in the decode step `step` (shared by the jobs prefilling in it). */
  readonly #prefillBudget = { step: -1, left: 0 };
  #noEogBias: TokenBias | undefined;
  #closing: Promise<void> | undefined;

  private constructor(parts: {
    info: EngineInfo;
    llama: Llama;
    model: LlamaModel;
    context: LlamaContext;
    sequences: PooledSequence[];
    draft: DraftParts | undefined;
    counters: DecodeCounters;
    generating: { count: number };
    lockstep: boolean;
    clock: StepClock | undefined;
    log: Logger | undefined;
    closeTimeoutMs: number;
    prompt: PromptMode;
    prefixReuse: boolean;
    snapshots: PrefixSnapshots | undefined;
    prefillChunkTokens: number;
  }) {
    this.info = parts.info;
    this.#llama = parts.llama;
    this.#model = parts.model;
    this.#context = parts.context;
    this.#draft = parts.draft;
    this.#format = PromptFormat.for(parts.model, parts.prompt);
    this.#pool = new SequencePool(parts.sequences);
    this.#counters = parts.counters;
    this.#generating = parts.generating;
    this.#lockstep = parts.lockstep;
    this.#clock = parts.clock;
    this.#barrier = new LockstepBarrier(parts.clock);
    this.#log = parts.log;
    this.#closeTimeoutMs = parts.closeTimeoutMs;
    this.#prefixReuse = parts.prefixReuse;
    this.#snapshots = parts.snapshots;
    this.#prefillChunkTokens = parts.prefillChunkTokens;
    // Every job in flight listens to it (while it waits for a sequence or a snapshot).
    setMaxListeners(0, this.#closeController.signal);
  }

  /** See {@link createLlamaCppEngine}. */
  static async create(options: LlamaCppEngineOptions): Promise<LlamaCppEngine> {
    const started = performance.now();
    const log = options.logger?.child({ component: 'llama-cpp-engine' });
    if (!Number.isInteger(options.sequences) || options.sequences < 1)
      throw new GembatchError('GB_ERR_CONFIG', `sequences must be a positive integer, got ${options.sequences}`);
    if (!Number.isInteger(options.contextPerSequence) || options.contextPerSequence < 16)
      throw new GembatchError(
        'GB_ERR_CONFIG',
        `contextPerSequence must be an integer of at least 16, got ${options.contextPerSequence}`,
      );
    const { quant: quantLabel } = await inspectModelFile(options.modelPath, { option: 'modelPath' });

    const llama = await loadLlama({ gpu: options.gpu ?? 'auto', ...(log ? { logger: log } : {}) });
    const accelerator = acceleratorOf(llama);
    try {
      if (options.memoryLimitBytes !== undefined) {
        if (accelerator === 'cpu') await llama.setRamCap(options.memoryLimitBytes);
        else await llama.setVramCap(options.memoryLimitBytes);
      }
      const model = await loadModel(llama, options.modelPath, options.gpuLayers ?? 'auto');
      if (model.fileInsights.hasMtpWeights && !options.draftModelPath)
        log?.info(
          {},
          'the model carries MTP drafter weights; node-llama-cpp 3.21.1 has no MTP predictor, so they are not used',
        );
      const threads = options.threads ?? defaultThreads(accelerator, llama.cpuMathCores);
      const generating = { count: 0 };
      // A draft model decodes each sequence on its own (no lock-step, so no steps to time).
      const lockstep = options.lockstep ?? options.draftModelPath === undefined;
      const clock = lockstep ? new StepClock() : undefined;
      const counters = new DecodeCounters(() => generating.count, clock);
      const { context, sequences, contextPerSequence } = await createContextWithBackoff({
        model,
        sequences: options.sequences,
        contextPerSequence: options.contextPerSequence,
        minContextPerSequence: Math.min(
          options.minContextPerSequence ?? DEFAULT_MIN_CONTEXT,
          options.contextPerSequence,
        ),
        threads,
        batchSize: options.batchSize,
        flashAttention: options.flashAttention ?? defaultFlashAttention(accelerator),
        counters,
        log,
      });
      const draft = options.draftModelPath
        ? await createDraft(llama, options.draftModelPath, sequences, contextPerSequence, threads, log)
        : undefined;
      const pooled: PooledSequence[] = [];
      for (let i = 0; i < sequences; i++) {
        const predictor = draft?.predictors[i];
        pooled.push({
          sequenceId: i,
          sequence: context.getSequence({
            contextShift: { strategy: refuseContextShift },
            ...(predictor ? { tokenPredictor: predictor } : {}),
          }),
        });
      }
      const prefixReuse = options.prefixReuse ?? draft === undefined;
      const snapshots =
        prefixReuse &&
        (options.prefixSnapshots ?? accelerator === 'cpu') &&
        pooled.every((p) => !p.sequence.needsCheckpoints)
          ? await PrefixSnapshots.create(options.prefixSnapshotDir ? { baseDir: options.prefixSnapshotDir } : {}).catch(
              (error: unknown) => {
                log?.warn({ err: errorMessage(error) }, 'prefix snapshots off: no directory for them');
                return undefined;
              },
            )
          : undefined;
      const [gpuName] = await llama.getGpuDeviceNames();
      const info: EngineInfo = {
        engine: 'node-llama-cpp',
        model: options.modelName ?? modelNameFor(options.modelPath),
        quant: options.quant ?? quantLabel,
        accelerator,
        gpu: gpuName ?? 'cpu',
        capabilities: ['text'],
        sequences,
        contextPerSequence,
        chat: false,
      };
      const engine = new LlamaCppEngine({
        info,
        llama,
        model,
        context,
        sequences: pooled,
        draft,
        counters,
        generating,
        lockstep,
        clock,
        log,
        closeTimeoutMs: options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
        prompt: options.prompt ?? 'auto',
        prefixReuse,
        snapshots,
        prefillChunkTokens: options.prefillChunkTokens ?? defaultPrefillChunkTokens(accelerator, sequences),
      });
      info.chat = engine.#format.chat;
      await engine.#refreshVram();
      log?.info(
        {
          model: info.model,
          quant: info.quant,
          accelerator,
          gpu: info.gpu,
          sequences,
          contextPerSequence,
          threads,
          batchSize: context.batchSize,
          flashAttention: context.flashAttention,
          prompt: engine.#format.name,
          lockstep: engine.#lockstep,
          prefixReuse: engine.#prefixReuse,
          prefixSnapshots: snapshots !== undefined,
          prefillChunkTokens: engine.#prefillChunkTokens,
          draft: draft !== undefined,
          ms: Math.round(performance.now() - started),
        },
        'engine ready',
      );
      return engine;
    } catch (error) {
      await llama.dispose().catch(() => undefined);
      if (error instanceof GembatchError) throw error;
      throw new GembatchError('GB_ERR_MODEL_LOAD', `the model could not be loaded: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  async countTokens(text: string): Promise<number> {
    return this.#model.tokenize(text, false).length;
  }

  async countPromptTokens(request: Omit<GenerateRequest, 'maxTokens'>): Promise<number> {
    return this.#format.build(request).tokens.length;
  }

  async tokenize(text: string): Promise<number[]> {
    return this.#model.tokenize(text, false);
  }

  async detokenize(tokens: readonly number[]): Promise<string> {
    return this.#model.detokenize(tokens as readonly Token[], false);
  }

  stats(): EngineStats {
    return {
      activeSequences: this.#pool.inUse,
      promptTokensTotal: this.#stats.promptTokens,
      promptTokensReusedTotal: this.#stats.promptTokensReused,
      promptTokensEvaluatedTotal: this.#stats.promptTokensEvaluated,
      generationTokensTotal: this.#stats.generationTokens,
      decodeCallsTotal: this.#counters.calls,
      decodeTokensTotal: this.#counters.tokens,
      fullDecodeCallsTotal: this.#counters.fullCalls,
      decodeBatchTokens: new Map(this.#counters.histogram),
      ...(this.#clock ? { stepTimeMsTotal: this.#clock.times } : {}),
      vramTotalBytes: this.#stats.vramTotal,
      vramUsedBytes: this.#stats.vramUsed,
    };
  }

  generate(request: GenerateRequest): Promise<GenerateResult> {
    if (this.#closing) return Promise.reject(new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the engine is closing'));
    const job = this.#generate(request);
    this.#active.add(job);
    const forget = () => this.#active.delete(job);
    job.then(forget, forget);
    return job;
  }

  async #generate(request: GenerateRequest): Promise<GenerateResult> {
    const started = performance.now();
    if (!Number.isInteger(request.maxTokens) || request.maxTokens < 1)
      throw new GembatchError('GB_ERR_BAD_REQUEST', `maxTokens must be a positive integer, got ${request.maxTokens}`);
    if (request.media !== undefined && request.media.length > 0)
      throw new GembatchError(
        'GB_ERR_UNSUPPORTED_MEDIA',
        'this engine takes text only; images and audio need a node with a multimodal projector',
      );
    const grammar = request.jsonSchema ? await this.#grammarFor(request.jsonSchema) : undefined;
    const plan = this.#format.build(request, grammar ? grammarStopTriggers(grammar) : []);
    const promptTokens = plan.tokens.length;
    if (promptTokens + request.maxTokens > this.info.contextPerSequence) {
      throw new GembatchError(
        'GB_ERR_CONTEXT_OVERFLOW',
        `the prompt takes ${promptTokens} tokens and up to ${request.maxTokens} may be generated, more than the ${this.info.contextPerSequence}-token context of a sequence`,
        {
          details: { promptTokens, maxTokens: request.maxTokens, contextPerSequence: this.info.contextPerSequence },
        },
      );
    }
    const signal = request.signal
      ? AbortSignal.any([request.signal, this.#closeController.signal])
      : this.#closeController.signal;
    // Prefix affinity: the free sequence already holding the longest start of this prompt (as
    // llama-server picks a slot by prompt similarity), so reuse does not depend on which one is free.
    const pooled = await this.#pool.acquire(
      signal,
      this.#prefixReuse ? (candidate) => sharedPrefixLength(candidate.sequence.contextTokens, plan.tokens) : undefined,
    );
    let clean = false;
    let prefix: PreparedPrefix | undefined;
    try {
      prefix = await this.#preparePrefix(pooled, plan.tokens, signal);
      const result = await this.#decode(pooled, plan, prefix, grammar, request, signal, started);
      clean = true;
      return result;
    } finally {
      prefix?.snapshot?.finish('abandoned');
      // Without reuse, or after a failure (the sequence's state is whatever was decoded before it),
      // the next job starts from an empty sequence.
      if (!this.#prefixReuse || !clean)
        await pooled.sequence
          .clearHistory()
          .catch((error: unknown) =>
            this.#log?.warn(
              { err: toGembatchError(error).message, sequence: pooled.sequenceId },
              'sequence could not be cleared',
            ),
          );
      this.#pool.release(pooled);
      void this.#refreshVram();
    }
  }

  /**
   * Prefix reuse: keeps the tokens the sequence already holds that `tokens` starts with (a previous
   * job's system prompt, instruction, schema) and erases the rest, or loads a longer prefix from a
   * snapshot; returns how many are kept, so only `tokens.slice(kept)` is evaluated. At least the
   * last prompt token is always evaluated (its logits give the first generated token). When this
   * prompt shares a start with a recent one that no snapshot covers, `snapshot` asks the caller to
   * evaluate that start first and save it. When llama.cpp cannot cut the KV cache there (a
   * sliding-window cache that dropped the start), node-llama-cpp evaluates the kept tokens again;
   * the token meter shows it, and such tokens are counted as evaluated, not reused (`reused`).
   */
  async #preparePrefix(pooled: PooledSequence, tokens: readonly Token[], signal: AbortSignal): Promise<PreparedPrefix> {
    const sequence = pooled.sequence;
    if (!this.#prefixReuse) return this.#countPrompt(tokens.length, 0, 0);
    const snapshots = this.#snapshots;
    let kept = Math.min(sharedPrefixLength(sequence.contextTokens, tokens), tokens.length - 1);
    let reevaluated = 0;
    let trimmed = false;
    // Load the longest snapshot this prompt starts with, else cut the sequence to what it shares.
    // Either waits, and meanwhile another job may claim or save a longer one: look again until
    // nothing is longer than what the sequence holds, then claim (no wait between the last look
    // and the claim, so two jobs never claim one prefix).
    for (;;) {
      const found = snapshots?.find(tokens, kept);
      if (snapshots && found) {
        const loaded = await this.#loadSnapshot(pooled, found, signal);
        if (!loaded) snapshots.discard(found);
        kept = loaded ? found.tokens.length : 0;
        reevaluated = 0;
        trimmed = true;
        continue;
      }
      if (trimmed) break;
      trimmed = true;
      if (kept >= sequence.nextTokenIndex) continue;
      const meter = sequence.tokenMeter;
      const before = meter.usedInputTokens + meter.usedOutputTokens;
      await sequence.eraseContextTokenRanges([{ start: kept, end: sequence.nextTokenIndex }]);
      reevaluated = meter.usedInputTokens + meter.usedOutputTokens - before;
    }
    const prepared = this.#countPrompt(tokens.length, kept, reevaluated);
    // A longer start shared with a recent prompt than the sequence now holds: evaluate it first and save it.
    const snapshot = snapshots?.claim(tokens, kept);
    return snapshot ? { ...prepared, snapshot } : prepared;
  }

  /**
   * Loads a snapshot into the sequence (waiting while another job is still saving it); `false`
   * when it cannot be used (its save failed, or the load did), leaving the sequence empty.
   */
  async #loadSnapshot(pooled: PooledSequence, snapshot: PrefixSnapshot, signal: AbortSignal): Promise<boolean> {
    const file = await untilAborted(snapshot.file, signal, this.#closeController.signal);
    if (file === undefined) return false;
    try {
      await pooled.sequence.loadStateFromFile(file, { acceptRisk: true });
      if (pooled.sequence.nextTokenIndex === snapshot.tokens.length) return true;
    } catch (error) {
      this.#log?.warn({ err: errorMessage(error), sequence: pooled.sequenceId }, 'prefix snapshot could not be loaded');
    }
    await pooled.sequence.clearHistory();
    return false;
  }

  /**
   * Evaluates the shared start of the prompt that a new snapshot covers (in steps while other
   * sequences generate), saves the sequence's state and publishes it; returns how many prompt
   * tokens the sequence now holds. A failed save only means other jobs evaluate it themselves.
   */
  async #evaluateSnapshot(
    pooled: PooledSequence,
    tokens: Token[],
    kept: number,
    pending: PendingSnapshot,
    signal: AbortSignal,
  ): Promise<number> {
    const end = pending.snapshot.tokens.length;
    await this.#prefillInSteps(pooled, tokens.slice(kept, end), signal, { evaluateAll: true });
    let saved = false;
    try {
      await pooled.sequence.saveStateToFile(pending.file);
      saved = true;
    } catch (error) {
      this.#log?.warn({ err: errorMessage(error), sequence: pooled.sequenceId }, 'prefix snapshot could not be saved');
    }
    pending.finish(saved ? 'saved' : 'failed');
    if (!saved && this.#snapshots?.disabled)
      this.#log?.warn({ dir: this.#snapshots.dir }, 'prefix snapshots off: saves keep failing');
    return end;
  }

  /** Adds a prompt to the reused / evaluated counters. */
  #countPrompt(promptTokens: number, kept: number, reevaluated: number): PreparedPrefix {
    const reused = Math.max(0, kept - reevaluated);
    this.#stats.promptTokensReused += reused;
    this.#stats.promptTokensEvaluated += promptTokens - reused;
    return { kept, reused };
  }

  /**
   * Chunked prefill: while other sequences are generating, feeds `tokens` in lock-step with them,
   * at most `prefillChunkTokens` prompt tokens per decode step shared by every job prefilling in
   * that step, so no prompt, nor many short ones arriving together, stalls the running sequences
   * for their whole length. Returns the last chunk for `evaluate()`, which the caller puts into
   * the step that yields the first token: that chunk is taken from the step's budget too (a
   * burst of 14 short documents joining at once had gone into one 509-token decode, 50-69 ms
   * against a 2-3 ms step). Holding a place at the barrier meanwhile is what puts each chunk
   * into the same decode as the running sequences' next tokens. With `evaluateAll` (a
   * snapshot's prefix) every token is evaluated here and nothing is returned.
   */
  async #prefillInSteps(
    pooled: PooledSequence,
    tokens: Token[],
    signal: AbortSignal,
    { evaluateAll = false } = {},
  ): Promise<Token[]> {
    const cap = this.#prefillChunkTokens;
    let rest = tokens;
    if (this.#lockstep && cap > 0) {
      const key = pooled.sequenceId;
      while (rest.length > 0 && this.#decoding > 0) {
        await this.#barrier.arrive(key);
        throwIfAborted(signal, this.#closeController.signal);
        if (this.#decoding === 0) break;
        // The whole rest fits this step: it goes in with the running sequences' next tokens.
        if (!evaluateAll && rest.length <= cap && this.#takePrefillBudget(rest.length, true) > 0) return rest;
        // Otherwise a chunk that keeps at least the last prompt token for the final step.
        const take = this.#takePrefillBudget(Math.min(cap, evaluateAll ? rest.length : rest.length - 1));
        if (take === 0) continue;
        await pooled.sequence.evaluateWithoutGeneratingNewTokens(rest.slice(0, take));
        rest = rest.slice(take);
      }
    }
    if (!evaluateAll) return rest;
    if (rest.length > 0) await pooled.sequence.evaluateWithoutGeneratingNewTokens(rest);
    return [];
  }

  /**
   * Takes up to `wanted` prompt tokens from the budget of the decode step being released now
   * (`whole`: all of them or none).
   */
  #takePrefillBudget(wanted: number, whole = false): number {
    const step = this.#barrier.releases;
    if (this.#prefillBudget.step !== step) {
      this.#prefillBudget.step = step;
      this.#prefillBudget.left = this.#prefillChunkTokens;
    }
    if (whole && wanted > this.#prefillBudget.left) return 0;
    const take = Math.min(wanted, this.#prefillBudget.left);
    this.#prefillBudget.left -= take;
    return take;
  }

  async #decode(
    pooled: PooledSequence,
    plan: ReturnType<PromptFormat['build']>,
    prefix: PreparedPrefix,
    grammar: LlamaGrammar | undefined,
    request: GenerateRequest,
    signal: AbortSignal,
    started: number,
  ): Promise<GenerateResult> {
    const model = this.#model;
    const tracker = new OutputTracker(plan, (token, previous) =>
      model.detokenize([token as Token], true, previous as readonly Token[]),
    );
    const grammarState = grammar ? new LlamaGrammarEvaluationState({ model, grammar }) : undefined;
    const key = pooled.sequenceId;
    const onToken = guardTokenListener(request.onToken, this.#log);
    this.#generating.count++;
    let tail: Token[];
    try {
      throwIfAborted(signal, this.#closeController.signal);
      const held = prefix.snapshot
        ? await this.#evaluateSnapshot(pooled, plan.tokens, prefix.kept, prefix.snapshot, signal)
        : prefix.kept;
      tail = await this.#prefillInSteps(pooled, plan.tokens.slice(held), signal);
    } catch (error) {
      this.#generationEnded();
      this.#barrier.leave(key);
      throw this.#generationError(error);
    }
    const temperature = request.temperature ?? 0;
    const tokenBias = request.ignoreEos ? { tokenBias: this.#eogBanned() } : {};
    // Lock-step jobs step the sequence directly (DirectSteps: the sampler configured once, and again only when
    // a grammar is switched off or on at a thought's edge). The engine without lock-step keeps evaluate(): only
    // it handles a draft model's predictions.
    const iterator: AsyncIterator<Token, void> =
      this.#lockstep && tail.length > 0
        ? new DirectSteps(pooled.sequence, tail, {
            temperature,
            ...tokenBias,
            ...(grammarState ? { grammar: { state: grammarState, active: () => !tracker.inThought } } : {}),
          })
        : pooled.sequence.evaluate(tail, {
            temperature,
            yieldEogToken: true,
            ...(grammarState ? { grammarEvaluationState: () => (tracker.inThought ? undefined : grammarState) } : {}),
            ...tokenBias,
          });
    let generated = 0;
    let firstTokenAt: number | undefined;
    let lastTokenAt = 0;
    let finishReason: FinishReason = 'length';
    let decoding = false;
    try {
      throwIfAborted(signal, this.#closeController.signal);
      let step = await iterator.next();
      this.#stats.promptTokens += plan.tokens.length;
      this.#decoding++;
      decoding = true;
      while (!step.done) {
        const token = step.value;
        const now = performance.now();
        if (!request.ignoreEos && model.isEogToken(token)) {
          finishReason = 'stop';
          break;
        }
        firstTokenAt ??= now;
        lastTokenAt = now;
        generated++;
        this.#stats.generationTokens++;
        const stopped = tracker.push(token);
        onToken(generated);
        if (stopped) {
          finishReason = 'stop';
          break;
        }
        if (generated >= request.maxTokens) break;
        throwIfAborted(signal, this.#closeController.signal);
        if (this.#lockstep) await this.#barrier.arrive(key);
        throwIfAborted(signal, this.#closeController.signal);
        step = await iterator.next();
      }
      if (step.done) finishReason = 'stop';
    } catch (error) {
      throw this.#generationError(error);
    } finally {
      if (decoding) this.#decoding--;
      this.#generationEnded();
      this.#barrier.leave(key);
      await iterator.return?.().catch(() => undefined);
    }
    const { text, thoughts } = tracker.result((tokens) => model.detokenize(tokens as Token[], false));
    const totalMs = performance.now() - started;
    return {
      text,
      finishReason,
      promptTokens: plan.tokens.length,
      reusedPromptTokens: prefix.reused,
      generatedTokens: generated,
      mediaTokens: 0,
      timeToFirstTokenMs: firstTokenAt === undefined ? null : firstTokenAt - started,
      interTokenMs:
        generated >= 2 && firstTokenAt !== undefined ? (lastTokenAt - firstTokenAt) / (generated - 1) : null,
      totalMs,
      ...(request.includeThoughts ? { thoughts } : {}),
    };
  }

  /** A job stops generating; with none left the step clock stops counting. */
  #generationEnded(): void {
    this.#generating.count--;
    if (this.#generating.count === 0) this.#clock?.idle();
  }

  #generationError(error: unknown): GembatchError {
    if (error instanceof GembatchError) return error;
    if (error instanceof DisposedError || this.#closeController.signal.aborted)
      return new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the engine closed during generation', { cause: error });
    return new GembatchError('GB_ERR_INFERENCE', `generation failed: ${errorMessage(error)}`, { cause: error });
  }

  /** A token bias that forbids end-of-generation tokens (benchmarks generate exactly `maxTokens`). */
  #eogBanned(): TokenBias {
    if (!this.#noEogBias) {
      const bias = new TokenBias(this.#model.tokenizer);
      for (const token of [this.#model.tokens.eos, this.#model.tokens.eot])
        if (token !== null) bias.set(token, 'never');
      this.#noEogBias = bias;
    }
    return this.#noEogBias;
  }

  /** The compiled grammar of a JSON Schema, or `undefined` when node-llama-cpp cannot express it (then output is validated only). */
  #grammarFor(schema: Record<string, unknown>): Promise<LlamaGrammar | undefined> {
    const key = JSON.stringify(schema);
    let grammar = this.#grammars.get(key);
    if (!grammar) {
      grammar = this.#llama.createGrammarForJsonSchema(schema as never).then(
        (g) => g as LlamaGrammar,
        (error: unknown) => {
          this.#log?.warn(
            { err: errorMessage(error) },
            'JSON Schema has no grammar; generating unconstrained and validating',
          );
          return undefined;
        },
      );
      if (this.#grammars.size >= GRAMMAR_CACHE_SIZE)
        this.#grammars.delete(this.#grammars.keys().next().value as string);
      this.#grammars.set(key, grammar);
    }
    return grammar;
  }

  async #refreshVram(): Promise<void> {
    if (this.info.accelerator === 'cpu' || this.#closing) return;
    try {
      const vram = await this.#llama.getVramState();
      this.#stats.vramTotal = vram.total;
      this.#stats.vramUsed = vram.used;
    } catch {
      // Stats only: a failed read keeps the last value.
    }
  }

  /**
   * Stops taking work, waits up to `closeTimeoutMs` for active generations, aborts what is left
   * (they fail with a retryable `GB_ERR_SERVICE_UNAVAILABLE`), then disposes the context, model and
   * llama. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#pool.rejectWaiting(new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the engine is closing'));
      if (!(await settleWithin([...this.#active], this.#closeTimeoutMs))) {
        this.#log?.warn({ active: this.#active.size }, 'generations still running at close; aborting them');
        this.#closeController.abort(new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the engine is closing'));
        await settleWithin([...this.#active], CLOSE_ABORT_GRACE_MS);
      }
      for (const predictor of this.#draft?.predictors ?? []) predictor.dispose();
      await this.#context.dispose();
      await this.#draft?.context.dispose();
      await this.#model.dispose();
      await this.#draft?.model.dispose();
      await this.#llama.dispose();
      await this.#snapshots?.close();
      this.#log?.info(
        {
          promptTokens: this.#stats.promptTokens,
          generatedTokens: this.#stats.generationTokens,
          decodeCalls: this.#counters.calls,
        },
        'engine closed',
      );
    })();
    return this.#closing;
  }
}

/** What a job's sequence holds of its prompt before evaluating the rest. */
interface PreparedPrefix {
  /** Prompt tokens the sequence holds (kept from the previous job or loaded from a snapshot). */
  kept: number;
  /** Of those, the ones not evaluated again (the job's `reusedPromptTokens`). */
  reused: number;
  /** A snapshot this job evaluates and saves first (its shared start, `kept` up to the snapshot's length). */
  snapshot?: PendingSnapshot;
}

/** Resolves as `promise` does, or throws as {@link throwIfAborted} when `signal` aborts first. */
async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, closeSignal: AbortSignal): Promise<T> {
  throwIfAborted(signal, closeSignal);
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      try {
        throwIfAborted(signal, closeSignal);
      } catch (error) {
        reject(error);
      }
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function throwIfAborted(signal: AbortSignal, closeSignal: AbortSignal): void {
  if (!signal.aborted) return;
  if (closeSignal.aborted) throw new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the engine closed during generation');
  throw new GembatchError('GB_ERR_CANCELLED', 'generation was cancelled', { cause: signal.reason });
}

/** Context shift would silently drop the start of a document: refuse it. */
function refuseContextShift(): never {
  throw new GembatchError('GB_ERR_CONTEXT_OVERFLOW', 'the sequence ran out of context');
}

/** JSON grammars end with a run of newlines (node-llama-cpp's own stop trigger). */
function grammarStopTriggers(grammar: LlamaGrammar): string[] {
  return grammar.stopGenerationTriggers
    .map((trigger) => {
      if (typeof trigger === 'string') return trigger;
      const values: readonly unknown[] = isLlamaText(trigger) ? trigger.values : trigger;
      return values.every((v) => typeof v === 'string') ? values.join('') : '';
    })
    .filter((t) => t !== '');
}

async function loadModel(llama: Llama, modelPath: string, gpuLayers: number | 'auto' | 'max'): Promise<LlamaModel> {
  try {
    return await llama.loadModel({ modelPath, gpuLayers });
  } catch (error) {
    throw new GembatchError(
      'GB_ERR_MODEL_LOAD',
      `${path.basename(modelPath)} could not be loaded: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

interface ContextPlan {
  model: LlamaModel;
  sequences: number;
  contextPerSequence: number;
  minContextPerSequence: number;
  threads: number;
  batchSize: number | undefined;
  flashAttention: boolean | 'auto';
  counters: DecodeCounters;
  log: Logger | undefined;
}

/**
 * Creates the context, halving the sequences while it does not fit (and then the context, down to
 * the floor): a node that asked for too much comes up smaller instead of dying.
 */
async function createContextWithBackoff(
  plan: ContextPlan,
): Promise<{ context: LlamaContext; sequences: number; contextPerSequence: number }> {
  let sequences = plan.sequences;
  let contextPerSequence = plan.contextPerSequence;
  for (;;) {
    try {
      const context = await plan.model.createContext({
        sequences,
        contextSize: contextPerSequence,
        threads: plan.threads,
        ...(plan.batchSize !== undefined ? { batchSize: plan.batchSize } : {}),
        flashAttention: plan.flashAttention,
        batching: { itemPrioritizationStrategy: plan.counters.strategy },
        failedCreationRemedy: false,
      });
      return { context, sequences, contextPerSequence: context.contextSize };
    } catch (error) {
      const reason = error instanceof InsufficientMemoryError ? 'insufficient memory' : errorMessage(error);
      if (sequences > 1) {
        const next = Math.floor(sequences / 2);
        plan.log?.warn({ sequences, next, contextPerSequence, reason }, 'context does not fit; halving sequences');
        sequences = next;
      } else if (Math.floor(contextPerSequence / 2) >= plan.minContextPerSequence) {
        const next = Math.floor(contextPerSequence / 2);
        plan.log?.warn(
          { sequences, contextPerSequence, next, reason },
          'one sequence does not fit; halving its context',
        );
        contextPerSequence = next;
      } else {
        throw new GembatchError(
          'GB_ERR_MODEL_LOAD',
          `no context fits: even one sequence of ${contextPerSequence} tokens failed (${reason})`,
          { cause: error },
        );
      }
    }
  }
}

async function createDraft(
  llama: Llama,
  draftPath: string,
  sequences: number,
  contextPerSequence: number,
  threads: number,
  log: Logger | undefined,
) {
  await inspectModelFile(draftPath, { option: 'draftModelPath' });
  const model = await loadModel(llama, draftPath, 'auto');
  const context = await model.createContext({
    sequences,
    contextSize: contextPerSequence,
    threads,
    failedCreationRemedy: false,
  });
  const predictors = Array.from(
    { length: sequences },
    () =>
      new DraftSequenceTokenPredictor(context.getSequence(), {
        evaluateOptions: { tokenBias: new TokenBias(model.tokenizer) },
      }),
  );
  log?.info({ draft: path.basename(draftPath), sequences }, 'speculative decoding on');
  return { model, context, predictors };
}
