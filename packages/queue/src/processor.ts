import type { Logger } from '@gembatch/telemetry';
import type { ControlQueueName, QueueName } from '@gembatch/contracts';

/**
 * What a processor sees of the queue: ids, a logger, cancellation, progress and fan-out. Processors
 * are plain async functions of `(payload, ctx)`; only the adapter knows BullMQ.
 */
export interface ProcessorContext {
  jobId: string;
  queue: QueueName | ControlQueueName;
  /** 1 on the first try. */
  attempt: number;
  /** Attempts the job has in all. */
  maxAttempts: number;
  /** ms since epoch when the job entered this queue. */
  enqueuedAt: number;
  /** ms since epoch when this attempt started. */
  startedAt: number;
  /** ms since epoch when this job first started in this queue (earlier than `startedAt` after children resume it). */
  firstStartedAt: number;
  /** A child logger carrying `jobId`, `queue` and `attempt`. Never log content. */
  log: Logger;
  /** Aborted when the job is cancelled or the worker is shutting down hard. */
  signal: AbortSignal;
  /**
   * Reports progress, 0..100. Cheap to call often: the adapter writes to Redis at most every
   * 500 ms, not in a job's first 500 ms, and never 100 (the job's completion reports that).
   */
  progress(percent: number): void;
  /**
   * Runs child jobs and returns their outcomes in the order given. The first call adds the children
   * (idempotent: ids are stable) and suspends this job until they all finish; the job is then
   * processed again from the start and the same call returns. Never catch the suspension.
   */
  awaitChildren<Result>(children: ChildJob[]): Promise<ChildOutcome<Result>[]>;
  /** Removes fields from the stored payload once they are no longer needed (secrets such as a PDF password). */
  forget(fields: readonly string[]): Promise<void>;
  /** Adds a job to another queue under a stable id (a no-op when that id already exists). */
  enqueue(queue: QueueName, jobId: string, data: unknown, options?: { priority?: number }): Promise<void>;
}

export interface ChildJob {
  queue: QueueName | ControlQueueName;
  /** Stable id, so a retried parent does not add children twice. */
  id: string;
  data: unknown;
  priority?: number;
}

export type ChildOutcome<Result> = { ok: true; value: Result } | { ok: false; failedReason: string };

export type Processor<Payload, Result> = (payload: Payload, ctx: ProcessorContext) => Promise<Result>;
