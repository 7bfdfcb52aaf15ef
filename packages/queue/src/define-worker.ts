import { Queue, UnrecoverableError, WaitingChildrenError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  BULLMQ_STALLED_REASON,
  bullmqKeys,
  encodeFailedReason,
  errorMessage,
  GembatchError,
  JOB_STALLED_MESSAGE,
  redisKeys,
  toGembatchError,
  type ControlQueueName,
  type QueueName,
} from '@gembatch/contracts';
import type { Logger } from '@gembatch/telemetry';
import { closeSharedQueue } from './close-queue.ts';
import type { ChildJob, ChildOutcome, Processor, ProcessorContext } from './processor.ts';

export interface DefineWorkerOptions<Payload, Result> {
  queue: QueueName | ControlQueueName;
  /** BullMQ key prefix. */
  prefix: string;
  /** A blocking connection (`createRedisConnection({blocking: true})`); BullMQ duplicates it as needed. The caller closes it. */
  connection: Redis;
  /** Jobs processed at once. */
  concurrency: number;
  processor: Processor<Payload, Result>;
  logger: Logger;
  /** Parses the raw job data; a parse failure fails the job without retries. */
  parse: (data: unknown) => Payload;
  /** Called after each job settles (metrics, stats). */
  onSettled?(event: SettledEvent<Result>): void;
  /**
   * ms a job's lock lasts without renewal (BullMQ renews it every half of it). A crashed node's jobs
   * are taken up again at most `lockDurationMs + stalledIntervalMs` after the crash. Defaults to `10000`.
   */
  lockDurationMs?: number;
  /**
   * Payload fields that are secrets (a PDF `password`): removed from the stored job whenever it
   * fails for good (any error, cancellation, a stall past its limit), since no retry will need them.
   * A processor removes them itself once they served (`ctx.forget`). Defaults to none.
   */
  secretFields?: readonly string[];
  /** ms between checks for jobs whose lock expired (their node died); they go back to waiting. Defaults to `5000`. */
  stalledIntervalMs?: number;
  /** Times a job may be taken back from a dead node before it fails with a stall error. Defaults to `2`. */
  maxStalledCount?: number;
}

/**
 * Why 10 s: BullMQ renews a lock every half of its duration from a timer, so a lock is lost only
 * if the event loop stalls for 5 s (decoding runs on native threads and keeps it free); and with a
 * 5 s stall check, jobs of a kill -9'd node are back in `waiting` within 15 s.
 */
export const DEFAULT_LOCK_DURATION_MS = 10_000;
/** Why 5 s: half the lock, so recovery stays under 20 s; the check is one Lua script per queue. */
export const DEFAULT_STALLED_INTERVAL_MS = 5_000;
/** Why 2: a job may meet two crashed nodes (a deploy, then a bad node) before a stall fails it. */
export const DEFAULT_MAX_STALLED_COUNT = 2;

export interface SettledEvent<Result> {
  jobId: string;
  payload: unknown;
  outcome: 'completed' | 'failed' | 'suspended';
  result?: Result;
  error?: { code: string; message: string; retryable: boolean; final: boolean };
  ctx: Pick<ProcessorContext, 'enqueuedAt' | 'startedAt' | 'firstStartedAt' | 'attempt'>;
}

/**
 * Progress writes are at most this often per job (ms), so a hot decode loop does not flood Redis.
 * The first comes this long after the job started, and 100 % is never written (completion says
 * it): a job shorter than this costs no progress write at all, which was one Redis round trip
 * (a Lua script and an event) per short job on top of taking and finishing it.
 */
const PROGRESS_INTERVAL_MS = 500;

/** Abort reason of jobs still running when the grace period ends: they are handed back, not failed. */
const HAND_BACK_REASON = 'worker shutting down: job handed back';

class Suspended extends Error {
  constructor() {
    super('waiting for children');
  }
}

/** A BullMQ worker whose processor is a plain `(payload, ctx)` function. */
export interface GembatchWorker {
  readonly queue: QueueName | ControlQueueName;
  /** Aborts a running job's signal (cancellation). Returns false if it is not running here. */
  cancel(jobId: string, reason?: string): boolean;
  /**
   * Stops taking jobs and waits for active ones up to `timeoutMs`; those still running then are
   * aborted and moved back to `waiting` with their attempt count intact, for another node. Idempotent.
   */
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
  const childQueues = new Map<QueueName | ControlQueueName, Queue>();
  const queueFor = (name: QueueName | ControlQueueName): Queue => {
    let queue = childQueues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: options.connection, prefix: options.prefix });
      // Without a listener BullMQ prints each error of the shared connection; the worker's own listener reports outages.
      queue.on('error', () => undefined);
      childQueues.set(name, queue);
    }
    return queue;
  };

  /** A cancelled job (marker set by the API) must not run, nor hand work to a next stage or children. */
  const assertNotCancelled = async (job: Job): Promise<void> => {
    const rootId =
      typeof (job.data as { job_id?: unknown })?.job_id === 'string'
        ? (job.data as { job_id: string }).job_id
        : (job.id as string);
    if ((await options.connection.exists(redisKeys.cancelled(options.prefix, rootId))) === 1)
      throw new GembatchError('GB_ERR_CANCELLED', 'the job was cancelled');
  };

  /**
   * Calls `onSettled` isolated from the job (graphile-worker style): a listener that throws is
   * logged, and cannot turn a completed job into a failed one nor be called again for the same
   * settlement by the job's own catch.
   */
  const notifySettled = (event: SettledEvent<Result>, log: Logger): void => {
    if (!options.onSettled) return;
    try {
      options.onSettled(event);
    } catch (error) {
      log.error({ err: error, outcome: event.outcome }, 'onSettled listener threw; the job outcome stands');
    }
  };

  /** Set when the grace period of `close()` ends: jobs that stop from then on are handed back. */
  let handingBack = false;

  const processJob = async (job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<Result> => {
    const startedAt = Date.now();
    const log = options.logger.child({ jobId: job.id, queue: options.queue, attempt: job.attemptsMade + 1 });
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    let lastProgressAt = startedAt;
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
        if (value >= 100 || value === lastProgress || now - lastProgressAt < PROGRESS_INTERVAL_MS) return;
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
        await queueFor(queue).add(queue, data, {
          ...inheritedOptions(job),
          jobId,
          ...(enqueueOptions?.priority ? { priority: enqueueOptions.priority } : {}),
        });
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
        const [values, failures] = await Promise.all([
          job.getChildrenValues<ChildResult>(),
          job.getIgnoredChildrenFailures(),
        ]);
        return children.map((child) => {
          const key = bullmqKeys.job(options.prefix, child.queue, child.id);
          if (Object.hasOwn(failures, key)) return { ok: false, failedReason: failures[key] as string };
          if (Object.hasOwn(values, key)) return { ok: true, value: values[key] as ChildResult };
          return { ok: false, failedReason: `GB_ERR_INTERNAL: child ${child.id} has no result` };
        });
      },
    };
    const settledCtx = {
      enqueuedAt: ctx.enqueuedAt,
      startedAt,
      firstStartedAt: ctx.firstStartedAt,
      attempt: ctx.attempt,
    };
    try {
      await assertNotCancelled(job);
      const payload = parsePayload(options.parse, job.data);
      const result = await options.processor(payload, ctx);
      notifySettled({ jobId: ctx.jobId, payload: job.data, outcome: 'completed', result, ctx: settledCtx }, log);
      return result;
    } catch (thrown) {
      if (handingBack && token && !(thrown instanceof Suspended)) {
        // Whatever the processor threw after the grace period ended (GB_ERR_CANCELLED, most
        // likely) was caused by the abort: the job goes back to waiting, not to failed or delayed.
        await handBack(job, token, log);
        throw new WaitingError();
      }
      if (thrown instanceof Suspended) {
        log.debug('waiting for children');
        notifySettled({ jobId: ctx.jobId, payload: job.data, outcome: 'suspended', ctx: settledCtx }, log);
        throw new WaitingChildrenError();
      }
      const error = toGembatchError(thrown);
      const final = !error.retryable || ctx.attempt >= ctx.maxAttempts;
      const logFields = {
        code: error.code,
        retryable: error.retryable,
        final,
        ms: Date.now() - startedAt,
        ...(error.details ? { details: error.details } : {}),
      };
      if (error.code === 'GB_ERR_INTERNAL') log.error({ ...logFields, err: thrown }, 'job failed');
      else log.warn(logFields, 'job failed');
      if (final) await forgetSecrets(job, options.secretFields, log);
      notifySettled(
        {
          jobId: ctx.jobId,
          payload: job.data,
          outcome: 'failed',
          error: { code: error.code, message: error.message, retryable: error.retryable, final },
          ctx: settledCtx,
        },
        log,
      );
      const reason = encodeFailedReason(error);
      if (!error.retryable) throw new UnrecoverableError(reason);
      throw new Error(reason);
    }
  };

  const worker = new TypedFailureWorker(options.queue, processJob, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS,
    stalledInterval: options.stalledIntervalMs ?? DEFAULT_STALLED_INTERVAL_MS,
    maxStalledCount: options.maxStalledCount ?? DEFAULT_MAX_STALLED_COUNT,
    autorun: true,
  });
  // BullMQ reports each failed reconnect of its own connections here; an outage is one line when it
  // starts and one when the shared connection is back, other errors one line each.
  let connectionLostAt: number | undefined;
  worker.on('error', (error: Error & { code?: string }) => {
    if (!isConnectionError(error)) {
      options.logger.error({ err: error, queue: options.queue }, 'worker error');
      return;
    }
    if (connectionLostAt !== undefined) return;
    connectionLostAt = Date.now();
    options.logger.warn(
      { queue: options.queue, code: error.code, err: error.message },
      'queue connection lost; reconnecting',
    );
  });
  const onConnectionReady = () => {
    if (connectionLostAt === undefined) return;
    options.logger.info({ queue: options.queue, downMs: Date.now() - connectionLostAt }, 'queue connection restored');
    connectionLostAt = undefined;
  };
  options.connection.on('ready', onConnectionReady);
  // A job failed without its processor's catch (stalled past its limit): its secrets go too.
  if (options.secretFields?.length) {
    worker.on('failed', (job) => {
      if (!job || !hasSecrets(job.data, options.secretFields)) return;
      void job
        .getState()
        .then((state) => (state === 'failed' ? forgetSecrets(job, options.secretFields, options.logger) : undefined))
        .catch(() => undefined);
    });
  }

  let closing: Promise<void> | undefined;
  return {
    queue: options.queue,
    cancel: (jobId, reason) => worker.cancelJob(jobId, reason),
    waitUntilReady: async () => {
      await worker.waitUntilReady();
    },
    close(timeoutMs = 30_000) {
      closing ??= (async () => {
        const timer = setTimeout(() => {
          handingBack = true;
          worker.cancelAllJobs(HAND_BACK_REASON);
        }, timeoutMs);
        try {
          await worker.close();
        } finally {
          clearTimeout(timer);
          options.connection.off('ready', onConnectionReady);
          await Promise.all([...childQueues.values()].map((queue) => closeSharedQueue(queue, options.connection)));
        }
      })();
      return closing;
    },
  };
}

/**
 * BullMQ fails a job that stalled past `maxStalledCount` itself, outside the processor, with a
 * plain message (`BULLMQ_STALLED_REASON`), which would read as `GB_ERR_INTERNAL`. This worker
 * writes it as `GB_ERR_JOB_STALLED` (non-retryable) instead, so clients and batch outcomes see why.
 */
class TypedFailureWorker extends Worker {
  protected override handleFailed(
    error: Error,
    job: Job,
    token: string,
    fetchNext?: () => boolean,
    span?: Parameters<Worker['handleFailed']>[4],
  ): Promise<Job> {
    const typed =
      error instanceof UnrecoverableError && error.message === BULLMQ_STALLED_REASON
        ? new UnrecoverableError(encodeFailedReason(new GembatchError('GB_ERR_JOB_STALLED', JOB_STALLED_MESSAGE)))
        : error;
    return super.handleFailed(typed, job, token, fetchNext, span);
  }
}

/** Socket-level failures that ioredis retries by itself (Redis down, restarting, unreachable). */
const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

function isConnectionError(error: Error & { code?: string }): boolean {
  return (
    (error.code !== undefined && CONNECTION_ERROR_CODES.has(error.code)) ||
    error.message === 'Connection is closed.' ||
    error.name === 'MaxRetriesPerRequestError'
  );
}

/**
 * Moves an active job back to `waiting` (its lock released, `attemptsMade` untouched), so another
 * node starts it at once. If that fails (the lock was lost), the job stays active and the stall
 * check hands it back when its lock expires.
 */
async function handBack(job: Job, token: string, log: Logger): Promise<void> {
  try {
    await job.moveToWait(token);
    log.info({ attemptsMade: job.attemptsMade }, 'job handed back');
  } catch (error) {
    log.warn({ err: errorMessage(error) }, 'job could not be handed back; the stall check will');
  }
}

function parsePayload<Payload>(parse: (data: unknown) => Payload, data: unknown): Payload {
  try {
    return parse(data);
  } catch (error) {
    // A payload that does not parse will not parse on a retry either.
    throw new GembatchError(
      'GB_ERR_BAD_REQUEST',
      `invalid job payload: ${error instanceof Error ? error.message.slice(0, 500) : String(error)}`,
      { cause: error, retryable: false },
    );
  }
}

function hasSecrets(data: unknown, fields: readonly string[] | undefined): boolean {
  return !!fields && typeof data === 'object' && data !== null && fields.some((field) => Object.hasOwn(data, field));
}

/** Removes secret fields from a job's stored payload; a failure to do so is logged, never thrown. */
async function forgetSecrets(job: Job, fields: readonly string[] | undefined, log: Logger): Promise<void> {
  if (!hasSecrets(job.data, fields)) return;
  const data = { ...(job.data as Record<string, unknown>) };
  for (const field of fields ?? []) delete data[field];
  await job
    .updateData(data)
    .catch((error: unknown) =>
      log.warn({ err: errorMessage(error), jobId: job.id }, 'could not remove secret fields from a failed job'),
    );
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
