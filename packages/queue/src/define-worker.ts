import { Queue, UnrecoverableError, WaitingChildrenError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { encodeFailedReason, GembatchError, redisKeys, toGembatchError, type QueueName } from '@gembatch/contracts';
import type { Logger } from '@gembatch/telemetry';
import type { ChildJob, ChildOutcome, Processor, ProcessorContext } from './processor.ts';

export interface DefineWorkerOptions<Payload, Result> {
  queue: QueueName;
  /** BullMQ key prefix. */
  prefix: string;
  /** A blocking connection (`createRedisConnection({blocking: true})`); BullMQ duplicates it as needed. The caller closes it. */
  connection: Redis;
  /** Jobs processed at once. */
  concurrency: number;
  processor: Processor<Payload, Result>;
  logger: Logger;
  /** Parses the raw job data; a parse failure fails the job without retries. */
  parse(data: unknown): Payload;
  /** Called after each job settles (metrics, stats). */
  onSettled?(event: SettledEvent<Result>): void;
  /** ms a job's lock lasts without renewal (BullMQ renews it at half). Defaults to `30000`. */
  lockDurationMs?: number;
}

export interface SettledEvent<Result> {
  jobId: string;
  payload: unknown;
  outcome: 'completed' | 'failed' | 'suspended';
  result?: Result;
  error?: { code: string; message: string; retryable: boolean; final: boolean };
  ctx: Pick<ProcessorContext, 'enqueuedAt' | 'startedAt' | 'firstStartedAt' | 'attempt'>;
}

/** Progress writes are at most this often per job (ms), so a hot decode loop does not flood Redis. */
const PROGRESS_INTERVAL_MS = 500;

class Suspended extends Error {
  constructor() {
    super('waiting for children');
  }
}

/** A BullMQ worker whose processor is a plain `(payload, ctx)` function. */
export interface GembatchWorker {
  readonly queue: QueueName;
  /** Aborts a running job's signal (cancellation). Returns false if it is not running here. */
  cancel(jobId: string, reason?: string): boolean;
  /** Stops taking jobs and waits for active ones (up to `timeoutMs`, then aborts them). Idempotent. */
  close(timeoutMs?: number): Promise<void>;
  /** Resolves once the worker is connected and polling. */
  waitUntilReady(): Promise<void>;
}

/**
 * The only place that knows BullMQ's worker API: wraps a processor, gives it a context, maps
 * `GembatchError`s to failed reasons (`"<code>: <message>"`), and non-retryable ones to
 * `UnrecoverableError` so BullMQ does not retry them.
 */
export function defineWorker<Payload, Result>(options: DefineWorkerOptions<Payload, Result>): GembatchWorker {
  const childQueues = new Map<QueueName, Queue>();
  const queueFor = (name: QueueName): Queue => {
    let queue = childQueues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: options.connection, prefix: options.prefix });
      childQueues.set(name, queue);
    }
    return queue;
  };

  /** A cancelled job (marker set by the API) must not run, nor hand work to a next stage or children. */
  const assertNotCancelled = async (job: Job): Promise<void> => {
    const rootId = typeof (job.data as { job_id?: unknown })?.job_id === 'string' ? (job.data as { job_id: string }).job_id : (job.id as string);
    if ((await options.connection.exists(redisKeys.cancelled(options.prefix, rootId))) === 1) throw new GembatchError('GB_ERR_CANCELLED', 'the job was cancelled');
  };

  const processJob = async (job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<Result> => {
    const startedAt = Date.now();
    const log = options.logger.child({ jobId: job.id, queue: options.queue, attempt: job.attemptsMade + 1 });
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    let lastProgressAt = 0;
    let lastProgress = -1;
    const ctx: ProcessorContext = {
      jobId: job.id as string,
      queue: options.queue,
      attempt: job.attemptsMade + 1,
      maxAttempts: job.opts.attempts ?? 1,
      enqueuedAt: job.timestamp,
      startedAt,
      firstStartedAt: job.processedOn && job.processedOn < startedAt ? job.processedOn : startedAt,
      log,
      signal: controller.signal,
      progress(percent) {
        const value = Math.max(0, Math.min(100, Math.round(percent)));
        const now = Date.now();
        if (value === lastProgress || (now - lastProgressAt < PROGRESS_INTERVAL_MS && value < 100)) return;
        lastProgress = value;
        lastProgressAt = now;
        job.updateProgress(value).catch((error: unknown) => log.warn({ err: error }, 'progress update failed'));
      },
      async forget(fields) {
        const data = { ...(job.data as Record<string, unknown>) };
        for (const field of fields) delete data[field];
        await job.updateData(data);
      },
      async enqueue(queue, jobId, data, enqueueOptions) {
        await assertNotCancelled(job);
        await queueFor(queue).add(queue, data, { ...inheritedOptions(job), jobId, ...(enqueueOptions?.priority ? { priority: enqueueOptions.priority } : {}) });
      },
      async awaitChildren<ChildResult>(children: ChildJob[]): Promise<ChildOutcome<ChildResult>[]> {
        await assertNotCancelled(job);
        const parent = { id: job.id as string, queue: job.queueQualifiedName };
        for (const child of children) {
          // On re-entry the children exist already. Adding one again would put a failed child back
          // among the parent's pending dependencies (BullMQ re-links an existing job to its parent),
          // and the parent would wait for it forever.
          if (await queueFor(child.queue).getJob(child.id)) continue;
          await queueFor(child.queue).add(child.queue, child.data, {
            ...inheritedOptions(job),
            jobId: child.id,
            parent,
            // A failed child must not fail the parent blindly: the parent reads the child's typed error.
            ignoreDependencyOnFailure: true,
            ...(child.priority ? { priority: child.priority } : {}),
          });
        }
        if (token && (await job.moveToWaitingChildren(token))) throw new Suspended();
        const [values, failures] = await Promise.all([job.getChildrenValues<ChildResult>(), job.getIgnoredChildrenFailures()]);
        return children.map((child) => {
          const key = `${options.prefix}:${child.queue}:${child.id}`;
          if (Object.hasOwn(failures, key)) return { ok: false, failedReason: failures[key] as string };
          if (Object.hasOwn(values, key)) return { ok: true, value: values[key] as ChildResult };
          return { ok: false, failedReason: `GB_ERR_INTERNAL: child ${child.id} has no result` };
        });
      },
    };
    const settledCtx = { enqueuedAt: ctx.enqueuedAt, startedAt, firstStartedAt: ctx.firstStartedAt, attempt: ctx.attempt };
    try {
      await assertNotCancelled(job);
      const payload = parsePayload(options.parse, job.data);
      const result = await options.processor(payload, ctx);
      options.onSettled?.({ jobId: ctx.jobId, payload: job.data, outcome: 'completed', result, ctx: settledCtx });
      return result;
    } catch (thrown) {
      if (thrown instanceof Suspended) {
        log.debug('waiting for children');
        options.onSettled?.({ jobId: ctx.jobId, payload: job.data, outcome: 'suspended', ctx: settledCtx });
        throw new WaitingChildrenError();
      }
      const error = toGembatchError(thrown);
      const final = !error.retryable || ctx.attempt >= ctx.maxAttempts;
      const logFields = { code: error.code, retryable: error.retryable, final, ms: Date.now() - startedAt, ...(error.details ? { details: error.details } : {}) };
      if (error.code === 'GB_ERR_INTERNAL') log.error({ ...logFields, err: thrown }, 'job failed');
      else log.warn(logFields, 'job failed');
      options.onSettled?.({ jobId: ctx.jobId, payload: job.data, outcome: 'failed', error: { code: error.code, message: error.message, retryable: error.retryable, final }, ctx: settledCtx });
      const reason = encodeFailedReason(error);
      if (!error.retryable) throw new UnrecoverableError(reason);
      throw new Error(reason);
    }
  };

  const worker = new Worker(options.queue, processJob, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs ?? 30_000,
    autorun: true,
  });
  worker.on('error', (error) => options.logger.error({ err: error, queue: options.queue }, 'worker error'));

  let closing: Promise<void> | undefined;
  return {
    queue: options.queue,
    cancel: (jobId, reason) => worker.cancelJob(jobId, reason),
    waitUntilReady: async () => {
      await worker.waitUntilReady();
    },
    close(timeoutMs = 30_000) {
      closing ??= (async () => {
        const timer = setTimeout(() => worker.cancelAllJobs('worker shutting down'), timeoutMs);
        try {
          await worker.close();
        } finally {
          clearTimeout(timer);
          await Promise.all([...childQueues.values()].map((queue) => queue.close()));
        }
      })();
      return closing;
    },
  };
}

function parsePayload<Payload>(parse: (data: unknown) => Payload, data: unknown): Payload {
  try {
    return parse(data);
  } catch (error) {
    // A payload that does not parse will not parse on a retry either.
    throw new GembatchError('GB_ERR_BAD_REQUEST', `invalid job payload: ${error instanceof Error ? error.message.slice(0, 500) : String(error)}`, { cause: error, retryable: false });
  }
}

/** Children and next stages keep the job's retry policy and retention. */
function inheritedOptions(job: Job) {
  return {
    attempts: job.opts.attempts,
    backoff: job.opts.backoff,
    removeOnComplete: job.opts.removeOnComplete,
    removeOnFail: job.opts.removeOnFail,
  };
}
