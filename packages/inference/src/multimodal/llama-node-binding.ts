import { createRequire } from 'node:module';

/**
 * The part of @fugood/llama.node 1.7.15 this engine uses, typed here. The package ships its
 * TypeScript sources as CommonJS (`lib/*.ts`) without declaration files, which this repo's
 * strict ESM settings cannot type-check, so it is loaded with `require` and described by these
 * interfaces (checked against `lib/binding.ts`, `lib/index.ts` and `lib/parallel.ts`).
 */

/** Build flavours of the native addon: `default` is CPU (+ BLAS), the others need their GPU runtime. */
export type LibVariant = 'default' | 'cuda' | 'vulkan';

export interface BackendDeviceInfo {
  backend: string;
  /** `cpu`, `gpu`, `igpu` or `accel`. */
  type: string;
  deviceName: string;
  maxMemorySize: number;
}

interface ModelLoadOptions {
  model: string;
  n_ctx: number;
  n_batch: number;
  n_ubatch: number;
  n_parallel: number;
  n_threads?: number;
  n_gpu_layers: number;
  ctx_shift: boolean;
  flash_attn_type: 'auto' | 'on' | 'off';
  lib_variant: LibVariant;
}

export type ChatContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } }
  | { type: 'input_audio'; input_audio: { format: 'wav' | 'mp3'; url: string } };

export interface ChatMessage {
  role: 'system' | 'user';
  content: string | ChatContentPart[];
}

export interface ResponseFormat {
  type: 'json_schema';
  json_schema: { strict: boolean; schema: Record<string, unknown> };
}

interface FormattedChat {
  type: 'jinja' | 'llama-chat';
  prompt: string;
  media_paths?: string[];
  chat_format?: number;
  chat_parser?: string;
  generation_prompt?: string;
  thinking_start_tag?: string;
  thinking_end_tag?: string;
  additional_stops?: string[];
}

interface FormatChatParams {
  jinja: boolean;
  enable_thinking?: boolean;
  reasoning_format?: 'none' | 'auto';
  add_generation_prompt?: boolean;
  response_format?: ResponseFormat;
}

interface TokenizeResult {
  tokens: Int32Array;
  has_media: boolean;
  chunk_pos?: number[];
  chunk_pos_media?: number[];
}

interface ModelInfo {
  desc: string;
  chatTemplates: { llamaChat: boolean; jinja: { default: boolean } };
}

interface ParallelCompletionOptions {
  prompt: string;
  media_paths?: string[];
  n_predict: number;
  temperature: number;
  top_k: number;
  top_p: number;
  min_p: number;
  dry_multiplier: number;
  stop?: string[];
  ignore_eos?: boolean;
  response_format?: ResponseFormat;
  chat_format?: number;
  chat_parser?: string;
  reasoning_format?: 'none' | 'auto';
  generation_prompt?: string;
  thinking_start_tag?: string;
  thinking_end_tag?: string;
}

interface ParallelCompletionResult {
  text: string;
  content?: string;
  reasoning_content?: string;
  stopped_eos: boolean;
  stopped_limit: boolean;
  stopped_word: boolean;
  context_full: boolean;
  tokens_predicted: number;
  timings: { cache_n: number; prompt_n: number; predicted_n: number };
}

export interface ParallelCompletionHandle {
  requestId: number;
  promise: Promise<ParallelCompletionResult>;
  stop: () => void;
}

/** The native context object (used directly where the JS wrapper would take an unsafe path). */
interface NativeLlamaContext {
  getFormattedChat(messages: ChatMessage[], chatTemplate: string, params: FormatChatParams): FormattedChat;
}

export interface LlamaNodeContext {
  /** The native context behind the wrapper. */
  ctx: NativeLlamaContext;
  getModelInfo(): ModelInfo;
  getUsedDevices(): string[];
  getFormattedChat(messages: ChatMessage[], template: undefined, params: FormatChatParams): FormattedChat;
  tokenize(text: string, options?: { media_paths?: string[] }): Promise<TokenizeResult>;
  detokenize(tokens: number[]): Promise<string>;
  initMultimodal(options: {
    path: string;
    use_gpu: boolean;
    image_min_tokens?: number;
    image_max_tokens?: number;
  }): boolean;
  getMultimodalSupport(): { vision: boolean; audio: boolean };
  parallel: {
    enable(config: { n_parallel: number; n_batch: number }): Promise<boolean>;
    completion(
      options: ParallelCompletionOptions,
      onToken?: (requestId: number, token: unknown) => void,
    ): Promise<ParallelCompletionHandle>;
  };
  release(): Promise<void>;
}

export interface LlamaNodeModule {
  loadModel(options: ModelLoadOptions): Promise<LlamaNodeContext>;
  isLibVariantAvailable(variant: LibVariant): Promise<boolean>;
  getBackendDevicesInfo(variant: LibVariant): Promise<BackendDeviceInfo[]>;
  BuildInfo: { number: string; commit: string };
}

/** Loads @fugood/llama.node (its JS wrapper; the native addon loads with the first model). */
export function loadLlamaNodeModule(): LlamaNodeModule {
  const require = createRequire(import.meta.url);
  return require('@fugood/llama.node') as LlamaNodeModule;
}
