import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  ALL_QUEUES,
  GembatchError,
  QUEUE_NAMES,
  redisKeys,
  type ExtractJobData,
  type GenerateJobData,
  type QueueName,
} from '@gembatch/contracts';
import { closeSharedQueue } from './close-queue.ts';

/** Seven days: how long finished jobs, cancel markers and index entries stay readable. */
export const DEFAULT_JOB_RETENTION_SECONDS = 7 * 24 * 60 * 60;
/** Tries per stage before a retryable failure becomes final. */
export const DEFAULT_JOB_ATTEMPTS = 3;
/** First retry after 2 s, then 4 s, 8 s...: long enough for a restarting worker or Redis. */
export const DEFAULT_BACKOFF_MS = 2_000;

/**
 * What the job queries need: the three queues, a connection for gembatch's own keys, and the
 * retention window. `JobProducer` is one; a tool may assemble its own.
 */
export interface JobQueues {
  readonly queues: Readonly<Record<QueueName, Queue>>;
  /** Non-blocking connection for gembatch's keys (cancel markers, tenant index) and Pub/Sub publishes. */
  readonly redis: Redis;
  /** BullMQ and gembatch key prefix. */
  readonly prefix: string;
  /** TTL of cancel markers and the tenant index window, in seconds. */
  readonly retentionSeconds: number;
}

export interface JobProducerOptions {
  /** An ioredis connection (request/response, `createRedisConnection({blocking: false})` is fine). The caller owns and closes it. */
  connection: Redis;
  /** BullMQ key prefix (`GEMBATCH_REDIS_PREFIX`). */
  prefix: string;
  /** Tries per stage, with exponential backoff between them. Defaults to `3`. */
  attempts?: number;
  /** How long finished jobs are kept (then BullMQ removes them). Defaults to 7 days. */
  retentionSeconds?: number;
  /** Delay before the first retry; doubles each time. Defaults to `2000`. */
  backoffMs?: number;
}

/** One job of `JobProducer.submitBulk`. */
export interface BulkSubmission {
  data: ExtractJobData | GenerateJobData;
  queue: QueueName;
  priority?: number;
}

export interface SubmitOptions {
  /** 1 (highest) .. 1000 (lowest). Defaults to none: before every prioritized job, FIFO. */
  priority?: number;
}

/**
 * The producer side of the job lifecycle: adds a job to its first queue under its gembatch id (the
 * same id in every queue it passes through), with the retry and retention policy, and records it
 * in its tenant's job index. Owns the BullMQ `Queue` objects, not the connection.
 */
export class JobProducer implements JobQueues {
  readonly queues: Readonly<Record<QueueName, Queue>>;
  readonly redis: Redis;
  readonly prefix: string;
  readonly retentionSeconds: number;
  readonly #attempts: number;
  readonly #backoffMs: number;
  #closing: Promise<void> | undefined;

  constructor(options: JobProducerOptions) {
    this.redis = options.connection;
    this.prefix = options.prefix;
    this.retentionSeconds = options.retentionSeconds ?? DEFAULT_JOB_RETENTION_SECONDS;
    this.#attempts = options.attempts ?? DEFAULT_JOB_ATTEMPTS;
    this.#backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.queues = Object.fromEntries(
      ALL_QUEUES.map((name) => [name, new Queue(name, { connection: options.connection, prefix: options.prefix })]),
    ) as Record<QueueName, Queue>;
    // Without a listener BullMQ prints every error of the shared connection (a stack per reconnect
    // attempt during an outage); the connection's owner reports outages (`createRedisConnection({logger})`).
    for (const queue of Object.values(this.queues)) queue.on('error', () => undefined);
  }

  /**
   * Adds a job: `ExtractJobData` to `extract` (a file), `GenerateJobData` to `generate` (inline
   * text). Resolves once the job is in Redis. Adding an id that exists already is a no-op (BullMQ
   * keeps the first), so a retried submission does not run twice.
   */
  async submit(data: ExtractJobData | GenerateJobData, queue: QueueName, options: SubmitOptions = {}): Promise<void> {
    if (this.#closing) throw new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the job producer is closed');
    if ((queue === QUEUE_NAMES.extract) !== 'file' in data)
      throw new GembatchError(
        'GB_ERR_INTERNAL',
        `a ${'file' in data ? 'file' : 'text'} job cannot start in the ${queue} queue`,
      );
    const retentionMs = this.retentionSeconds * 1000;
    const index = redisKeys.tenantJobs(this.prefix, data.tenant);
    // Index first: a listing skips an id whose job is missing, but would never show an unindexed job.
    await this.redis
      .multi()
      .zadd(index, data.submitted_at, data.job_id)
      .zremrangebyscore(index, '-inf', Date.now() - retentionMs)
      .expire(index, this.retentionSeconds)
      .exec();
    const jobOptions: JobsOptions = { jobId: data.job_id, ...this.#jobOptions(options.priority) };
    await this.queues[queue].add(data.task, data, jobOptions);
  }

  /**
   * Adds many jobs in one round trip per queue (`addBulk`), with the same retry and retention
   * policy as `submit`. They are not written to the tenant's job index: their owner (a batch)
   * indexes them, and 100,000 batch requests would bury a tenant's own jobs in `GET /v1/jobs`.
   * Ids that exist already are kept as they are (a re-fed request does not run twice).
   */
  async submitBulk(items: readonly BulkSubmission[]): Promise<void> {
    if (this.#closing) throw new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the job producer is closed');
    const byQueue = new Map<QueueName, Parameters<Queue['addBulk']>[0]>();
    for (const { data, queue, priority } of items) {
      if ((queue === QUEUE_NAMES.extract) !== 'file' in data)
        throw new GembatchError(
          'GB_ERR_INTERNAL',
          `a ${'file' in data ? 'file' : 'text'} job cannot start in the ${queue} queue`,
        );
      const list = byQueue.get(queue) ?? [];
      list.push({ name: data.task, data, opts: { ...this.#jobOptions(priority), jobId: data.job_id } });
      byQueue.set(queue, list);
    }
    await Promise.all([...byQueue].map(([queue, jobs]) => this.queues[queue].addBulk(jobs)));
  }

  #jobOptions(priority: number | undefined): JobsOptions {
    return {
      attempts: this.#attempts,
      backoff: { type: 'exponential', delay: this.#backoffMs },
      removeOnComplete: { age: this.retentionSeconds },
      removeOnFail: { age: this.retentionSeconds },
      ...(priority !== undefined ? { priority } : {}),
    };
  }

  /**
   * Closes the queues (not the connection), after their start-up on the connection has settled, so
   * the caller may quit the connection next with no command in flight. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= Promise.all(Object.values(this.queues).map((queue) => closeSharedQueue(queue, this.redis))).then(
      () => undefined,
    );
    return this.#closing;
  }
}
