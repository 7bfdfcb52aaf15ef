import type { Accelerator, EngineName, EngineStats, NodeCapability, TaskPrompt } from '@gembatch/contracts';

/** Defined in `@gembatch/contracts` (the node stats reporter publishes it); re-exported for the engines. */
export type { EngineStats };

/**
 * The contract every inference engine fulfils (node-llama-cpp for text, @fugood/llama.node for
 * text + images + audio). The worker only talks to this interface.
 */

/** A local file of normalised media (JPEG/PNG image, or 16 kHz mono WAV of ≤ 30 s). */
export interface MediaInput {
  kind: 'image' | 'audio';
  path: string;
}

export interface GenerateRequest {
  /** Task wording (system message, instruction, completion cue). */
  prompt: TaskPrompt;
  /** The input text the instruction applies to (may be empty when media carry the input). */
  input: string;
  /** Images and audio, in order. Only engines with the matching capability accept them. */
  media?: MediaInput[];
  /** Cap on generated tokens. */
  maxTokens: number;
  /** When set, decoding is constrained by a grammar built from this JSON Schema. */
  jsonSchema?: Record<string, unknown>;
  /** Let a thinking model (Gemma 4) think first; thoughts never appear in `text`. Defaults to `false`. */
  thinking?: boolean;
  /** Sampling temperature. Defaults to `0` (greedy: batch results are reproducible). */
  temperature?: number;
  /** Aborts generation; the promise rejects with `GB_ERR_CANCELLED`. */
  signal?: AbortSignal;
  /** Called after each generated token with the count so far (for progress). */
  onToken?: (generatedTokens: number) => void;
  /** Keep generating past end-of-generation tokens until `maxTokens` (benchmarks). Defaults to `false`. */
  ignoreEos?: boolean;
  /** Return the model's thinking in `GenerateResult.thoughts` (it never appears in `text`). Defaults to `false`. */
  includeThoughts?: boolean;
}

export type FinishReason = 'stop' | 'length';

export interface GenerateResult {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  /**
   * Prompt tokens the sequence already held from an earlier job (prefix reuse), not evaluated again; part of
   * `promptTokens`. Absent where the engine does not reuse.
   */
  reusedPromptTokens?: number;
  generatedTokens: number;
  /** Tokens spent on media (included in `promptTokens`). */
  mediaTokens: number;
  /** ms from the start of `generate` to the first generated token; null when none was generated. */
  timeToFirstTokenMs: number | null;
  /** Mean ms between generated tokens after the first; null with fewer than two tokens. */
  interTokenMs: number | null;
  /** ms the whole call took. */
  totalMs: number;
  /** The model's thinking, only when the request set `includeThoughts`. */
  thoughts?: string;
}

export interface EngineInfo {
  engine: EngineName;
  /** Model name (file name without extension, or catalog id). */
  model: string;
  /** Quantization label (e.g. `Q4_K_M`, `F16`). */
  quant: string;
  accelerator: Accelerator;
  /** GPU device name, or `cpu`. */
  gpu: string;
  capabilities: NodeCapability[];
  /** Parallel sequences in the one context (= the worker's generate concurrency). */
  sequences: number;
  /** Context tokens available to each sequence. */
  contextPerSequence: number;
  /** Whether the model has a chat template (otherwise completion mode). */
  chat: boolean;
}

export interface Engine {
  readonly info: EngineInfo;
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /** Tokens the text takes in this model (no BOS), for chunk planning and overflow checks. */
  countTokens(text: string): Promise<number>;
  /** Prompt tokens a request would take before generation (template + input + media). */
  countPromptTokens(request: Omit<GenerateRequest, 'maxTokens'>): Promise<number>;
  /** The text's token ids in this model (no BOS); chunk planning cuts on them. */
  tokenize?(text: string): Promise<number[]>;
  /** Text of token ids (special tokens left out). */
  detokenize?(tokens: readonly number[]): Promise<string>;
  stats(): EngineStats;
  /** Stops accepting work, waits for active generations, frees the context and model. Idempotent. */
  close(): Promise<void>;
}
