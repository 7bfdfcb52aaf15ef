import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { redisKeys } from '@gembatch/contracts';
import { closeSharedQueue } from '@gembatch/queue';
import { QUEUE_STATES, type ScalarSample } from '@gembatch/telemetry';

/**
 * Job counts of each queue by BullMQ state (waiting, active, delayed, prioritized,
 * waiting-children, completed, failed), through BullMQ's own `getJobCounts`.
 */
export class QueueCollector {
  readonly #queues: Queue[];
  readonly #redis: Redis;
  readonly #prefix: string;

  /**
   * @param redis Connection shared by the queue handles (not closed by `close()`).
   * @param prefix BullMQ key prefix.
   * @param names Queues to count.
   */
  constructor(redis: Redis, prefix: string, names: readonly string[]) {
    this.#redis = redis;
    this.#prefix = prefix;
    // skipMetasUpdate: a read-only observer must not rewrite the queues' meta keys.
    this.#queues = names.map((name) => new Queue(name, { connection: redis, prefix, skipMetasUpdate: true }));
    // Without a listener BullMQ prints each error of the shared connection; scrapes report outages (redis_up 0).
    for (const queue of this.#queues) queue.on('error', () => undefined);
  }

  /** One sample per queue and state. */
  async collect(): Promise<ScalarSample[]> {
    const counts = await Promise.all(this.#queues.map((queue) => queue.getJobCounts(...QUEUE_STATES)));
    return this.#queues.flatMap((queue, index) =>
      QUEUE_STATES.map((state) => ({ labels: { queue: queue.name, state }, value: counts[index]?.[state] ?? 0 })),
    );
  }

  /** Plain jobs waiting for a fair-share slot, all tenants together (they are in no queue until admitted). */
  async pendingJobs(): Promise<number> {
    const tenants = await this.#redis.smembers(redisKeys.pendingTenants(this.#prefix));
    const counts = await Promise.all(
      tenants.map((tenant) => this.#redis.llen(redisKeys.pendingJobs(this.#prefix, tenant))),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Closes the queue handles (not the shared connection). Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.#queues.map((queue) => closeSharedQueue(queue, this.#redis)));
  }
}
