import { access, constants } from 'node:fs/promises';
import process from 'node:process';
import { chooseLibVariant } from './gpu-variant.ts';
import { inferenceFailure, mediaLoadFailure } from './host-failure.ts';
import type {
  GenerateParams,
  HostFailure,
  HostInitOptions,
  HostMessage,
  ParentMessage,
  PromptCount,
} from './host-protocol.ts';
import {
  loadLlamaNodeModule,
  type LlamaNodeContext,
  type ParallelCompletionHandle,
  type ResponseFormat,
} from './llama-node-binding.ts';
import { countMediaChunkTokens } from './media-token-count.ts';
import { PromptCountCache } from './prompt-count-cache.ts';
import { MEDIA_MARKER, type PlannedMedia, type PromptPlan } from './prompt-plan.ts';
import { SerialQueue } from './serial-queue.ts';
import { errorMessage } from '@gembatch/contracts';

/**
 * The engine host: a child process that owns @fugood/llama.node. It lives in its own process
 * because the addon writes its log with `printf` to stdout (and echoes prompts there), and
 * because a C++ exception on its request path (a media file that vanished, a grammar it cannot
 * build) aborts the whole process. The parent reads stdout/stderr and survives such a crash.
 * Started by `HostProcess`; speaks the messages in `host-protocol.ts`.
 */

/** Offload every layer (more than any GGUF has) when a GPU is in use. */
const ALL_LAYERS = 999;

/** A minimal Jinja template used only to ask llama.cpp to build a grammar from a JSON Schema. */
const SCHEMA_CHECK_TEMPLATE = '{% for message in messages %}{{ message.content }}{% endfor %}';

class HostFailureError extends Error {
  constructor(readonly failure: HostFailure) {
    super(failure.message);
  }
}

interface PreparedPrompt {
  prompt: string;
  mediaPaths: string[];
  stops: string[];
  chatFormat: number | undefined;
  chatParser: string | undefined;
  generationPrompt: string | undefined;
  thinkingStartTag: string | undefined;
  thinkingEndTag: string | undefined;
}

interface ActiveRequest {
  cancelled: boolean;
  stop: (() => void) | undefined;
}

const CANCELLED: HostFailure = { code: 'GB_ERR_CANCELLED', message: 'generation was cancelled' };

function send(message: HostMessage, then?: () => void): void {
  if (!process.connected || !process.send) {
    then?.();
    return;
  }
  process.send(message, undefined, {}, () => then?.());
}

class EngineHost {
  #context: LlamaNodeContext | undefined;
  #options: HostInitOptions | undefined;
  /** Tokenizing (which decodes media) and queueing run one at a time: the binding shares one mtmd context. */
  readonly #queue = new SerialQueue();
  readonly #active = new Map<number, ActiveRequest>();
  readonly #counts = new PromptCountCache();
  #closing = false;

  async init(options: HostInitOptions): Promise<void> {
    this.#options = options;
    try {
      const llama = loadLlamaNodeModule();
      const chosen = await chooseLibVariant(options.gpu, async (variant) => {
        const available = await llama.isLibVariantAvailable(variant);
        return { available, devices: available ? await llama.getBackendDevicesInfo(variant) : [] };
      }).catch((error: unknown) => {
        throw new HostFailureError({ code: 'GB_ERR_MODEL_LOAD', message: errorMessage(error) });
      });
      const onGpu = chosen.device !== undefined;
      const gpuLayers = onGpu ? (options.gpuLayers ?? ALL_LAYERS) : 0;
      const context = await llama
        .loadModel({
          model: options.modelPath,
          n_ctx: options.sequences * options.contextPerSequence,
          n_batch: options.batchSize,
          n_ubatch: options.batchSize,
          n_parallel: options.sequences,
          ...(options.threads === undefined ? {} : { n_threads: options.threads }),
          n_gpu_layers: gpuLayers,
          ctx_shift: false,
          flash_attn_type: options.flashAttention === 'auto' ? 'auto' : options.flashAttention ? 'on' : 'off',
          lib_variant: chosen.variant,
        })
        .catch((error: unknown) => {
          throw new HostFailureError({
            code: 'GB_ERR_MODEL_LOAD',
            message: `the model file could not be loaded by llama.cpp (${firstLine(error)}); is it a text GGUF and not a projector?`,
          });
        });
      this.#context = context;
      const usedDevices = context.getUsedDevices();
      if (onGpu && gpuLayers > 0 && !usedDevices.some((device) => !/^cpu/i.test(device))) {
        throw new HostFailureError({
          code: 'GB_ERR_MODEL_LOAD',
          message: `gpu '${chosen.variant}' was selected but llama.cpp placed no layer on it (used devices: ${usedDevices.join(', ') || 'none'}); refusing a silent CPU fallback`,
        });
      }
      try {
        context.initMultimodal({
          path: options.mmprojPath,
          use_gpu: onGpu,
          image_max_tokens: options.imageMaxTokens,
          ...(options.imageMinTokens === undefined ? {} : { image_min_tokens: options.imageMinTokens }),
        });
      } catch (error) {
        throw new HostFailureError({
          code: 'GB_ERR_MODEL_LOAD',
          message: `the projector could not be loaded (${firstLine(error)}); is mmprojPath an mmproj GGUF matching the model?`,
        });
      }
      const support = context.getMultimodalSupport();
      await context.parallel.enable({ n_parallel: options.sequences, n_batch: options.batchSize });
      const modelInfo = context.getModelInfo();
      send({
        type: 'ready',
        info: {
          modelDescription: modelInfo.desc,
          chat: modelInfo.chatTemplates.jinja.default,
          vision: support.vision,
          audio: support.audio,
          libVariant: chosen.variant,
          accelerator: chosen.variant === 'default' ? 'cpu' : chosen.variant,
          gpu: chosen.device?.deviceName ?? 'cpu',
          vramTotalBytes: chosen.device?.maxMemorySize ?? 0,
          usedDevices,
          llamaBuild: `b${llama.BuildInfo.number}`,
        },
      });
    } catch (error) {
      const failure =
        error instanceof HostFailureError
          ? error.failure
          : { code: 'GB_ERR_MODEL_LOAD' as const, message: `engine start failed: ${firstLine(error)}` };
      await this.#context?.release().catch(() => undefined);
      this.#context = undefined;
      send({ type: 'init-failed', failure }, () => process.exit(1));
    }
  }

  async count(id: number, plan: PromptPlan, thinking: boolean): Promise<void> {
    try {
      const count = await this.#queue.run(async () => this.#countPrepared(this.#prepare(plan, thinking), plan.media));
      send({ type: 'counted', id, count: { promptTokens: count.promptTokens, mediaTokens: count.mediaTokens } });
    } catch (error) {
      send({ type: 'failed', id, failure: toFailure(error, 'counting prompt tokens failed') });
    }
  }

  async tokenize(id: number, text: string, reply: 'counted-text' | 'tokenized'): Promise<void> {
    try {
      const result = await this.#queue.run(async () => this.#requireContext().tokenize(text));
      send(
        reply === 'tokenized'
          ? { type: 'tokenized', id, tokens: Array.from(result.tokens) }
          : { type: 'counted-text', id, tokens: result.tokens.length },
      );
    } catch (error) {
      send({ type: 'failed', id, failure: toFailure(error, 'tokenizing failed') });
    }
  }

  async detokenize(id: number, tokens: number[]): Promise<void> {
    try {
      const text = await this.#queue.run(async () => this.#requireContext().detokenize(tokens));
      send({ type: 'detokenized', id, text });
    } catch (error) {
      send({ type: 'failed', id, failure: toFailure(error, 'detokenizing failed') });
    }
  }

  async generate(id: number, plan: PromptPlan, params: GenerateParams): Promise<void> {
    const state: ActiveRequest = { cancelled: false, stop: undefined };
    this.#active.set(id, state);
    try {
      const { handle, nPredict } = await this.#queue.run(async () => this.#enqueue(id, plan, params, state));
      const result = await handle.promise;
      const libraryPromptTokens = result.timings.cache_n + result.timings.prompt_n;
      if (libraryPromptTokens === 0 && result.tokens_predicted === 0) {
        throw new HostFailureError({
          code: 'GB_ERR_INFERENCE',
          message: 'llama.node returned an empty result: the slot did not take the prompt',
        });
      }
      const text = params.thinking
        ? (result.content ?? (result.reasoning_content === undefined ? result.text : ''))
        : result.text;
      const thoughts = params.thinking && params.includeThoughts ? (result.reasoning_content ?? '') : undefined;
      const stoppedByLength =
        result.stopped_limit ||
        result.context_full ||
        (!result.stopped_eos && !result.stopped_word && result.tokens_predicted >= nPredict);
      send({
        type: 'generated',
        id,
        outcome: {
          text,
          thoughts,
          stoppedByLength,
          generatedTokens: result.tokens_predicted,
          evaluatedPromptTokens: result.timings.prompt_n,
          libraryPromptTokens,
        },
      });
    } catch (error) {
      send({ type: 'failed', id, failure: state.cancelled ? CANCELLED : toFailure(error, 'generation failed') });
    } finally {
      this.#active.delete(id);
    }
  }

  cancel(id: number): void {
    const state = this.#active.get(id);
    if (!state) return;
    state.cancelled = true;
    state.stop?.();
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const id of this.#active.keys()) this.cancel(id);
    await this.#queue.run(async () => undefined);
    await this.#context?.release().catch(() => undefined);
    this.#context = undefined;
    send({ type: 'closed' }, () => process.exit(0));
  }

  /** Tokenizes, checks the fit and queues the request on a parallel slot (inside the serial queue). */
  async #enqueue(
    id: number,
    plan: PromptPlan,
    params: GenerateParams,
    state: ActiveRequest,
  ): Promise<{ handle: ParallelCompletionHandle; nPredict: number }> {
    if (state.cancelled) throw new HostFailureError(CANCELLED);
    const options = this.#requireOptions();
    const prepared = this.#prepare(plan, params.thinking);
    const count = await this.#countPrepared(prepared, plan.media);
    if (count.promptTokens >= options.contextPerSequence) {
      throw new HostFailureError({
        code: 'GB_ERR_CONTEXT_OVERFLOW',
        message: `the prompt takes ${count.promptTokens} tokens (${count.mediaTokens} of them media), but a sequence holds ${options.contextPerSequence}`,
        details: {
          promptTokens: count.promptTokens,
          mediaTokens: count.mediaTokens,
          contextPerSequence: options.contextPerSequence,
        },
      });
    }
    const responseFormat = params.jsonSchema === undefined ? undefined : this.#checkedResponseFormat(params.jsonSchema);
    if (state.cancelled) throw new HostFailureError(CANCELLED);
    const nPredict = Math.min(params.maxTokens, options.contextPerSequence - count.promptTokens);
    let generated = 0;
    const handle = await this.#requireContext().parallel.completion(
      {
        prompt: prepared.prompt,
        ...(prepared.mediaPaths.length > 0 ? { media_paths: prepared.mediaPaths } : {}),
        n_predict: nPredict,
        temperature: params.temperature,
        // llama.cpp's usual sampler defaults; with temperature 0 decoding is greedy anyway.
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        // The binding turns DRY on (1.75) by default, which would bend greedy outputs; off.
        dry_multiplier: 0,
        // Ignoring end-of-generation means ignoring the template's stop strings too.
        ...(params.ignoreEos ? { ignore_eos: true } : prepared.stops.length > 0 ? { stop: prepared.stops } : {}),
        ...(responseFormat ? { response_format: responseFormat } : {}),
        ...(params.thinking && prepared.chatFormat !== undefined
          ? {
              chat_format: prepared.chatFormat,
              reasoning_format: 'auto' as const,
              ...(prepared.chatParser ? { chat_parser: prepared.chatParser } : {}),
              ...(prepared.generationPrompt ? { generation_prompt: prepared.generationPrompt } : {}),
              ...(prepared.thinkingStartTag ? { thinking_start_tag: prepared.thinkingStartTag } : {}),
              ...(prepared.thinkingEndTag ? { thinking_end_tag: prepared.thinkingEndTag } : {}),
            }
          : { reasoning_format: 'none' as const }),
      },
      () => {
        generated += 1;
        send({ type: 'token', id, generated });
      },
    );
    state.stop = handle.stop;
    if (state.cancelled) handle.stop();
    send({ type: 'started', id, count });
    return { handle, nPredict };
  }

  /** The exact prompt string and media list that both counting and generation use. */
  #prepare(plan: PromptPlan, thinking: boolean): PreparedPrompt {
    const bare = {
      stops: [],
      chatFormat: undefined,
      chatParser: undefined,
      generationPrompt: undefined,
      thinkingStartTag: undefined,
      thinkingEndTag: undefined,
    };
    if (plan.mode === 'completion')
      return { ...bare, prompt: plan.prompt, mediaPaths: plan.media.map((media) => media.path) };
    let formatted;
    try {
      formatted = this.#requireContext().getFormattedChat(plan.messages, undefined, {
        jinja: true,
        enable_thinking: thinking,
        reasoning_format: thinking ? 'auto' : 'none',
        add_generation_prompt: true,
      });
    } catch (error) {
      throw new HostFailureError(inferenceFailure('the chat template failed', error));
    }
    return {
      prompt: formatted.prompt,
      mediaPaths: formatted.media_paths ?? [],
      stops: formatted.additional_stops ?? [],
      chatFormat: formatted.chat_format,
      chatParser: formatted.chat_parser,
      generationPrompt: formatted.generation_prompt,
      thinkingStartTag: formatted.thinking_start_tag,
      thinkingEndTag: formatted.thinking_end_tag,
    };
  }

  /**
   * The prompt's token count, from the cache when this exact prompt and these exact files were
   * counted before (a request is usually counted, then generated). Every media file is checked
   * to exist first: llama.cpp aborts the process when a queued request names a missing file.
   */
  async #countPrepared(prepared: PreparedPrompt, media: readonly PlannedMedia[]): Promise<PromptCount> {
    for (const [index, item] of media.entries()) {
      try {
        await access(item.path, constants.R_OK);
      } catch (error) {
        throw new HostFailureError(
          mediaLoadFailure(new Error(`File does not exist or cannot be opened: ${String(error)}`), {
            kind: item.kind,
            index,
          }),
        );
      }
    }
    const key = await this.#counts.keyFor(prepared.prompt, prepared.mediaPaths).catch(() => undefined);
    const cached = key === undefined ? undefined : this.#counts.get(key);
    if (cached) return cached;
    const count = await this.#measure(prepared, media);
    if (key !== undefined) this.#counts.set(key, count);
    return count;
  }

  /** Tokenizes with media, exactly as the slot will, and checks every media chunk came out whole. */
  async #measure(prepared: PreparedPrompt, media: readonly PlannedMedia[]): Promise<PromptCount> {
    const context = this.#requireContext();
    const batchSize = this.#requireOptions().batchSize;
    let result;
    try {
      result = await context.tokenize(prepared.prompt, { media_paths: prepared.mediaPaths });
    } catch (error) {
      throw new HostFailureError(await this.#explainTokenizeFailure(error, media));
    }
    const chunks =
      media.length === 0
        ? []
        : countMediaChunkTokens(result.tokens.length, result.chunk_pos ?? [], result.chunk_pos_media ?? []);
    if (chunks.length !== media.length) {
      throw new HostFailureError({
        code: 'GB_ERR_UNSUPPORTED_MEDIA',
        message: `llama.cpp produced tokens for ${chunks.length} of ${media.length} media files and skipped the rest`,
        details: { media: media.length, mediaChunks: chunks.length },
      });
    }
    for (const [index, tokens] of chunks.entries()) {
      const kind = media[index]?.kind ?? 'image';
      if (tokens > batchSize) {
        throw new HostFailureError({
          code: kind === 'image' ? 'GB_ERR_IMAGE_TOO_LARGE' : 'GB_ERR_AUDIO_TOO_LONG',
          message: `media ${index + 1} (${kind}) takes ${tokens} tokens, more than one decode batch (${batchSize}); it would be split`,
          details: { index, kind, tokens, batchSize },
        });
      }
    }
    return { promptTokens: result.tokens.length, mediaTokens: chunks.reduce((sum, tokens) => sum + tokens, 0) };
  }

  /** Finds which media file made tokenizing fail, by trying each alone. */
  async #explainTokenizeFailure(error: unknown, media: readonly PlannedMedia[]): Promise<HostFailure> {
    if (media.length === 0) return inferenceFailure('tokenizing the prompt failed', error);
    if (media.length === 1) return mediaLoadFailure(error, { kind: media[0]?.kind ?? 'image', index: 0 });
    for (const [index, item] of media.entries()) {
      try {
        await this.#requireContext().tokenize(MEDIA_MARKER, { media_paths: [item.path] });
      } catch (single) {
        return mediaLoadFailure(single, { kind: item.kind, index });
      }
    }
    return mediaLoadFailure(error, undefined);
  }

  /** Asks llama.cpp to build the grammar first, where its errors are catchable (when queueing they abort). */
  #checkedResponseFormat(schema: Record<string, unknown>): ResponseFormat {
    const responseFormat: ResponseFormat = { type: 'json_schema', json_schema: { strict: true, schema } };
    try {
      this.#requireContext().ctx.getFormattedChat([{ role: 'user', content: 'x' }], SCHEMA_CHECK_TEMPLATE, {
        jinja: true,
        response_format: responseFormat,
      });
    } catch (error) {
      const message = errorMessage(error);
      const reason = /JSON schema conversion failed:\s*\n?(.*)/i.exec(message)?.[1] ?? message.split('\n')[0] ?? '';
      throw new HostFailureError({
        code: 'GB_ERR_BAD_REQUEST',
        message: `the JSON Schema cannot be turned into a grammar: ${reason.slice(0, 200)}`,
      });
    }
    return responseFormat;
  }

  #requireContext(): LlamaNodeContext {
    if (!this.#context)
      throw new HostFailureError({ code: 'GB_ERR_SERVICE_UNAVAILABLE', message: 'the model is not loaded' });
    return this.#context;
  }

  #requireOptions(): HostInitOptions {
    if (!this.#options)
      throw new HostFailureError({ code: 'GB_ERR_SERVICE_UNAVAILABLE', message: 'the engine host is not initialised' });
    return this.#options;
  }
}

function toFailure(error: unknown, what: string): HostFailure {
  return error instanceof HostFailureError ? error.failure : inferenceFailure(what, error);
}

function firstLine(error: unknown): string {
  const message = errorMessage(error);
  return (message.split('\n')[0] ?? '').slice(0, 300);
}

function runHost(): void {
  const host = new EngineHost();
  process.on('message', (message: ParentMessage) => {
    switch (message.type) {
      case 'init':
        void host.init(message.options);
        break;
      case 'count':
        void host.count(message.id, message.plan, message.thinking);
        break;
      case 'count-text':
        void host.tokenize(message.id, message.text, 'counted-text');
        break;
      case 'tokenize':
        void host.tokenize(message.id, message.text, 'tokenized');
        break;
      case 'detokenize':
        void host.detokenize(message.id, message.tokens);
        break;
      case 'generate':
        void host.generate(message.id, message.plan, message.params);
        break;
      case 'cancel':
        host.cancel(message.id);
        break;
      case 'close':
        void host.close();
        break;
    }
  });
  // The parent is gone (crashed or killed): free the model and leave.
  process.on('disconnect', () => {
    void host.close();
  });
}

if (process.send) runHost();
