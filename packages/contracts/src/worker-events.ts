import { z } from 'zod';
import { ACCELERATORS } from './node-stats.ts';

/**
 * What a worker tells the process that started it (`gembatch up`) about its start: typed events
 * over the Node IPC channel of the child process, validated by the receiver with `WorkerEvent`.
 * Log lines are for people and may change wording; these are the API. Ids and figures only, never
 * document content.
 */
export const WorkerEvent = z.discriminatedUnion('type', [
  z.object({
    /** The model file is downloading (sent every 5 %). */
    type: z.literal('model.download'),
    downloaded_bytes: z.number().int().nonnegative(),
    /** 0 when the server did not say. */
    total_bytes: z.number().int().nonnegative(),
    percent: z.number().min(0).max(100),
  }),
  z.object({
    /** Which model and quantization the worker chose, and why. */
    type: z.literal('model.decision'),
    /** Path of the model file. */
    model: z.string(),
    quant: z.string(),
    /** `file`, an `hf:` URI, or the catalog source it came from. */
    source: z.string(),
    why: z.string(),
    sequences: z.number().int().positive(),
    context_per_sequence: z.number().int().positive(),
    memory_bytes: z.number().nonnegative(),
    accelerator: z.enum(ACCELERATORS),
  }),
  z.object({
    /** The model is loaded and the worker takes jobs. */
    type: z.literal('worker.ready'),
    node: z.string(),
    model: z.string(),
    quant: z.string(),
    sequences: z.number().int().positive(),
  }),
  z.object({
    /** The worker could not start and is exiting. */
    type: z.literal('worker.failed'),
    code: z.string(),
    message: z.string(),
  }),
]);
export type WorkerEvent = z.infer<typeof WorkerEvent>;
