import type { SerializedError } from '@gembatch/contracts';
import type { GpuPreference } from './gpu-variant.ts';
import type { LibVariant } from './llama-node-binding.ts';
import type { PromptPlan } from './prompt-plan.ts';

/**
 * Messages between the engine (parent) and the engine host (the child process that owns
 * llama.cpp). Every request carries an id; the host answers it with exactly one `counted`,
 * `counted-text`, `generated` or `failed` message (plus `started`/`token` on the way for a
 * generation). Nothing here carries document text except the prompt plan itself.
 */

export interface HostInitOptions {
  modelPath: string;
  mmprojPath: string;
  sequences: number;
  contextPerSequence: number;
  threads: number | undefined;
  gpu: GpuPreference;
  gpuLayers: number | undefined;
  imageMaxTokens: number;
  imageMinTokens: number | undefined;
  batchSize: number;
  /** llama.cpp's fused flash-attention kernel; `'auto'` lets llama.cpp decide. */
  flashAttention: boolean | 'auto';
}

export interface HostReadyInfo {
  modelDescription: string;
  /** Whether the model has a (Jinja) chat template. */
  chat: boolean;
  vision: boolean;
  audio: boolean;
  libVariant: LibVariant;
  accelerator: 'cuda' | 'vulkan' | 'cpu';
  /** GPU device name, or `cpu`. */
  gpu: string;
  vramTotalBytes: number;
  /** Devices llama.cpp put model layers on. */
  usedDevices: string[];
  /** llama.cpp build bundled in the addon, e.g. `b10257`. */
  llamaBuild: string;
}

export interface GenerateParams {
  maxTokens: number;
  temperature: number;
  thinking: boolean;
  /** Return the thinking (only meaningful with `thinking`). */
  includeThoughts: boolean;
  /**
   * Keep generating until `maxTokens`. Best effort: the binding's `ignore_eos` suppresses the EOS
   * token only (Gemma's end-of-turn still ends generation), and its `logit_bias`, the usual way
   * to suppress the others, crashes the process in parallel mode (measured with 1.7.15).
   */
  ignoreEos: boolean;
  jsonSchema: Record<string, unknown> | undefined;
}

export interface PromptCount {
  /** Every token the prompt takes, media included. */
  promptTokens: number;
  mediaTokens: number;
}

interface GenerationOutcome {
  text: string;
  /** The thinking, when asked for and the model thought. */
  thoughts: string | undefined;
  /** Stopped by the token cap or a full context, not by an end-of-generation token. */
  stoppedByLength: boolean;
  generatedTokens: number;
  /** Prompt tokens llama.cpp evaluated for this request (excludes KV-cache reuse). */
  evaluatedPromptTokens: number;
  /** Prompt tokens the library reports for the request: reused from the slot's cache + evaluated. */
  libraryPromptTokens: number;
}

/** A failure the host reports: a `GembatchError` as plain data. */
export type HostFailure = SerializedError;

export type ParentMessage =
  | { type: 'init'; options: HostInitOptions }
  | { type: 'count'; id: number; plan: PromptPlan; thinking: boolean }
  | { type: 'count-text'; id: number; text: string }
  | { type: 'tokenize'; id: number; text: string }
  | { type: 'detokenize'; id: number; tokens: number[] }
  | { type: 'generate'; id: number; plan: PromptPlan; params: GenerateParams }
  | { type: 'cancel'; id: number }
  | { type: 'close' };

export type HostMessage =
  | { type: 'ready'; info: HostReadyInfo }
  | { type: 'init-failed'; failure: HostFailure }
  | { type: 'counted'; id: number; count: PromptCount }
  | { type: 'counted-text'; id: number; tokens: number }
  | { type: 'tokenized'; id: number; tokens: number[] }
  | { type: 'detokenized'; id: number; text: string }
  | { type: 'started'; id: number; count: PromptCount }
  | { type: 'token'; id: number; generated: number }
  | { type: 'generated'; id: number; outcome: GenerationOutcome }
  | { type: 'failed'; id: number; failure: HostFailure }
  | { type: 'closed' };
