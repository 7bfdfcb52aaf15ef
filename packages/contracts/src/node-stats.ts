import { z } from 'zod';

/** Seconds a node's stats live in Redis without a heartbeat; a dead node disappears after this. */
export const NODE_STATS_TTL_SECONDS = 15;
/** How often a node refreshes its stats. */
export const NODE_HEARTBEAT_MS = 2_000;

export const NODE_CAPABILITIES = ['text', 'image', 'audio'] as const;
export type NodeCapability = (typeof NODE_CAPABILITIES)[number];

/**
 * What a worker node publishes about itself (a Redis hash, see `redisKeys.node`). Gauges are
 * current values; `*_total` fields are monotonic since the node started. Values are strings in
 * Redis; this schema coerces them.
 */
export const NodeStats = z.object({
  node: z.string(),
  host: z.string(),
  gpu: z.string(),
  accelerator: z.enum(['cuda', 'metal', 'vulkan', 'cpu']),
  engine: z.enum(['node-llama-cpp', 'llama.node']),
  model: z.string(),
  quant: z.string(),
  /** Comma-separated `NodeCapability` list. */
  capabilities: z.string(),
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
  vram_total_bytes: z.coerce.number(),
  vram_used_bytes: z.coerce.number(),
  ram_used_bytes: z.coerce.number(),
  /** Memory available to the node process (its cgroup limit, else the host's RAM); absent from older nodes. */
  ram_total_bytes: z.coerce.number().optional(),
});
export type NodeStats = z.infer<typeof NodeStats>;
