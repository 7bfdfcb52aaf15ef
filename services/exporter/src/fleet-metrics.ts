import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { ALL_QUEUES, errorMessage } from '@gembatch/contracts';
import {
  FLEET_FAMILIES,
  MetricFamily,
  ScrapeSnapshot,
  registerJobFamilies,
  registerNodeFamilies,
  type Logger,
  type NodeMetricsInput,
  type ScalarSample,
  type StoredFamilies,
} from '@gembatch/telemetry';
import { collectJobMetrics } from './collectors/job-collector.ts';
import { collectNodes } from './collectors/node-collector.ts';
import { QueueCollector } from './collectors/queue-collector.ts';

/** Prometheus' default scrape timeout is 10 s; answer well before it even when Redis hangs. */
export const DEFAULT_READ_TIMEOUT_MS = 5_000;

export interface FleetMetricsOptions {
  /** Connection used for every read (not closed by `close()`). */
  redis: Redis;
  /** Redis key prefix of the stack. */
  prefix: string;
  /** Queues whose job counts are exported. Defaults to every gembatch queue. */
  queues?: readonly string[];
  /** Longest a scrape waits for Redis. Defaults to `DEFAULT_READ_TIMEOUT_MS` (5 s). */
  readTimeoutMs?: number;
  /** Logs Redis failures (codes and timings only). Defaults to none. */
  logger?: Logger;
}

/** What one scrape read from Redis. */
export interface FleetSnapshot {
  redisUp: boolean;
  nodes: NodeMetricsInput[];
  jobs: StoredFamilies;
  queues: ScalarSample[];
  /** Plain jobs waiting for a fair-share slot (in no queue yet). */
  pendingJobs: number;
  readSeconds: number;
}

/**
 * The fleet's metrics as a prom-client registry: on each scrape it reads, in one pass, every live
 * node's heartbeat hash, the fleet job histograms and the BullMQ queue counts, and serves them as
 * the `gembatch_` families. Nothing is cached between scrapes, so an expired node disappears from
 * the next scrape and a restarted exporter serves the same totals.
 */
export class FleetMetrics {
  readonly registry = new Registry();
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #readTimeoutMs: number;
  readonly #logger: Logger | undefined;
  readonly #queueCollector: QueueCollector;
  #redisWasDown = false;
  #closing: Promise<void> | undefined;

  constructor(options: FleetMetricsOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#readTimeoutMs = options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    this.#logger = options.logger;
    this.#queueCollector = new QueueCollector(options.redis, options.prefix, options.queues ?? ALL_QUEUES);
    const snapshot = new ScrapeSnapshot(() => this.read());
    registerNodeFamilies(this.registry, async () => (await snapshot.get()).nodes);
    registerJobFamilies(this.registry, async () => (await snapshot.get()).jobs);
    MetricFamily.register(this.registry, FLEET_FAMILIES.queueJobs, async () => (await snapshot.get()).queues);
    MetricFamily.register(this.registry, FLEET_FAMILIES.pendingJobs, async () => {
      const current = await snapshot.get();
      return current.redisUp ? [{ labels: {}, value: current.pendingJobs }] : [];
    });
    MetricFamily.register(this.registry, FLEET_FAMILIES.liveNodes, async () => {
      const current = await snapshot.get();
      return current.redisUp ? [{ labels: {}, value: current.nodes.length }] : [];
    });
    MetricFamily.register(this.registry, FLEET_FAMILIES.redisUp, async () => [
      { labels: {}, value: (await snapshot.get()).redisUp ? 1 : 0 },
    ]);
    MetricFamily.register(this.registry, FLEET_FAMILIES.scrapeDuration, async () => [
      { labels: {}, value: (await snapshot.get()).readSeconds },
    ]);
  }

  /** Reads everything a scrape serves. Never throws: when Redis fails, `redisUp` is false and the rest empty. */
  async read(): Promise<FleetSnapshot> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Redis did not answer within ${this.#readTimeoutMs} ms`)),
        this.#readTimeoutMs,
      );
    });
    try {
      const [nodes, jobs, queues, pendingJobs] = await Promise.race([
        Promise.all([
          collectNodes(this.#redis, this.#prefix),
          collectJobMetrics(this.#redis, this.#prefix),
          this.#queueCollector.collect(),
          this.#queueCollector.pendingJobs(),
        ]),
        timeout,
      ]);
      if (this.#redisWasDown) this.#logger?.info('Redis readable again');
      this.#redisWasDown = false;
      return { redisUp: true, nodes, jobs, queues, pendingJobs, readSeconds: (performance.now() - started) / 1000 };
    } catch (error) {
      // Once per outage: Prometheus scrapes every few seconds.
      if (!this.#redisWasDown)
        this.#logger?.warn(
          { code: 'GB_ERR_SERVICE_UNAVAILABLE', err: errorMessage(error) },
          'cannot read fleet stats from Redis; serving gembatch_exporter_redis_up 0',
        );
      this.#redisWasDown = true;
      return {
        redisUp: false,
        nodes: [],
        jobs: new Map(),
        queues: [],
        pendingJobs: 0,
        readSeconds: (performance.now() - started) / 1000,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Releases the BullMQ queue handles (not the Redis connection). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#queueCollector.close();
    return this.#closing;
  }
}
