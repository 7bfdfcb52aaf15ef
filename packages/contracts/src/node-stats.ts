import { z } from 'zod';

/** Seconds a node's stats live in Redis without a heartbeat; a dead node disappears after this. */
export const NODE_STATS_TTL_SECONDS = 15;
/** How often a node refreshes its stats. */
export const NODE_HEARTBEAT_MS = 2_000;

export const NODE_CAPABILITIES = ['text', 'image', 'audio'] as const;
export type NodeCapability = (typeof NODE_CAPABILITIES)[number];

/** Where a node's model runs. */
export const ACCELERATORS = ['cuda', 'metal', 'vulkan', 'cpu'] as const;
export type Accelerator = (typeof ACCELERATORS)[number];

/** The inference engines a node may run (`@gembatch/inference`). */
export const ENGINE_NAMES = ['node-llama-cpp', 'llama.node'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** Where the engine's time goes while it generates, ms (time with no job generating is not counted). */
export interface StepTimes {
  /** From a decode's dispatch to its end. */
  decode: number;
  /**
   * From a decode's end until every sequence has its next token (the lock-step release), or until
   * the next dispatch when no step is released (one-token jobs): node-llama-cpp samples each
   * sequence's next token in its own threadpool task, then each token is handled (stop checks,
   * progress).
   */
  sampling: number;
  /** From the release to the next decode's dispatch: assembling the next step. */
  scheduling: number;
}

/**
 * An engine's counters: monotonic totals since it started, plus current gauges. Engines
 * (`@gembatch/inference`) produce it; the node stats reporter (`@gembatch/node-stats`) publishes it.
 */
export interface EngineStats {
  activeSequences: number;
  promptTokensTotal: number;
  /** Prompt tokens kept from an earlier job in the same sequence (prefix reuse) instead of being evaluated. Absent: the engine does not reuse (0). */
  promptTokensReusedTotal?: number;
  /** Prompt tokens evaluated (promptTokensTotal = reused + evaluated). Absent: all of promptTokensTotal. */
  promptTokensEvaluatedTotal?: number;
  generationTokensTotal: number;
  /** Number of decode (forward-pass dispatch) calls. */
  decodeCallsTotal: number;
  /** Tokens across all decode calls (so tokens per decode = this / decodeCallsTotal). */
  decodeTokensTotal: number;
  /** Decode calls that carried every active sequence. */
  fullDecodeCallsTotal: number;
  /** Histogram of tokens per decode call: upper bound → count (cumulative not required). */
  decodeBatchTokens: ReadonlyMap<number, number>;
  /** The engine's generating time since start, ms, by part. Absent: the engine does not measure it. */
  stepTimeMsTotal?: StepTimes;
  vramTotalBytes: number;
  vramUsedBytes: number;
}

/**
 * A node's capabilities as its Redis hash holds them: names joined by `,` (a hash field is a
 * string). Only `encodeNodeStats` writes it and only `NodeStats` reads it, so code sees a typed list.
 * Names this version does not know (a newer node's) are dropped rather than failing the node.
 */
const CapabilityList = z
  .union([z.array(z.string()), z.string().transform((joined) => joined.split(','))])
  .transform((names) =>
    names.filter((name): name is NodeCapability => (NODE_CAPABILITIES as readonly string[]).includes(name)),
  );

/**
 * What a worker node publishes about itself (a Redis hash, see `redisKeys.node`). Gauges are
 * current values; `*_total` fields are monotonic since the node started. Values are strings in
 * Redis; this schema coerces them.
 */
export const NodeStats = z.object({
  node: z.string(),
  host: z.string(),
  gpu: z.string(),
  accelerator: z.enum(ACCELERATORS),
  engine: z.enum(ENGINE_NAMES),
  model: z.string(),
  quant: z.string(),
  /** What the node's model takes besides text (`image`, `audio`); see `CapabilityList` for the Redis form. */
  capabilities: CapabilityList,
  started_at: z.coerce.number(),
  heartbeat_at: z.coerce.number(),
  sequences: z.coerce.number().int(),
  active_sequences: z.coerce.number().int(),
  context_per_sequence: z.coerce.number().int(),
  generation_tokens_per_second: z.coerce.number(),
  prompt_tokens_per_second: z.coerce.number(),
  generation_tokens_total: z.coerce.number().int(),
  prompt_tokens_total: z.coerce.number().int(),
  /** Prompt tokens kept in a sequence from an earlier job (prefix reuse), not evaluated; absent from older nodes. */
  prompt_tokens_reused_total: z.coerce.number().int().optional(),
  /** Prompt tokens evaluated (the rest of prompt_tokens_total); absent from older nodes. */
  prompt_tokens_evaluated_total: z.coerce.number().int().optional(),
  decode_calls_total: z.coerce.number().int(),
  /** The engine's generating time by part (see `StepTimes`), seconds since start; absent from older nodes and engines that do not measure it. */
  step_decode_seconds_total: z.coerce.number().optional(),
  step_sampling_seconds_total: z.coerce.number().optional(),
  step_scheduling_seconds_total: z.coerce.number().optional(),
  vram_total_bytes: z.coerce.number(),
  vram_used_bytes: z.coerce.number(),
  ram_used_bytes: z.coerce.number(),
  /** Memory available to the node process (its cgroup limit, else the host's RAM); absent from older nodes. */
  ram_total_bytes: z.coerce.number().optional(),
});
export type NodeStats = z.infer<typeof NodeStats>;

/** A node's stats as the fields of its Redis hash (the inverse of `NodeStats.parse`). */
export function encodeNodeStats(stats: NodeStats): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(stats)) {
    if (value === undefined) continue;
    fields[name] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return fields;
}
