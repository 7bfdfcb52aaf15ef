import type { Redis } from 'ioredis';
import { closeRedisConnection, createRedisConnection, redisKeyPrefix } from '@gembatch/queue';
import {
  startEventLoopWatchdog,
  startMetricsServer,
  type EventLoopWatchdog,
  type Logger,
  type MetricsServer,
} from '@gembatch/telemetry';
import { FleetMetrics } from './fleet-metrics.ts';

/** The port Prometheus scrapes the fleet on (also the OpenTelemetry Prometheus exporter's default, so dashboards and firewalls know it). */
export const DEFAULT_EXPORTER_PORT = 9464;

export interface ExporterOptions {
  /** Redis URL of the stack. */
  redisUrl: string;
  /** Redis key prefix of the stack. */
  prefix: string;
  /** Port of `/metrics`; `0` picks a free one. Defaults to `DEFAULT_EXPORTER_PORT` (9464). */
  port?: number;
  /** Interface to listen on. Defaults to `127.0.0.1`. */
  host?: string;
  /** Longest a scrape waits for Redis (ms). Defaults to 5000. */
  readTimeoutMs?: number;
  /** Logger for startup and Redis failures. Defaults to none. */
  logger?: Logger;
}

/** The fleet exporter: one Redis connection, the fleet registry, and the HTTP server that serves it. */
export class Exporter {
  #closing: Promise<void> | undefined;

  readonly #redis: Redis;
  readonly #metrics: FleetMetrics;
  readonly #server: MetricsServer;
  readonly #watchdog: EventLoopWatchdog;

  private constructor(redis: Redis, metrics: FleetMetrics, server: MetricsServer, watchdog: EventLoopWatchdog) {
    this.#redis = redis;
    this.#metrics = metrics;
    this.#server = server;
    this.#watchdog = watchdog;
  }

  /** Opens Redis and starts serving `/metrics`; rejects with `GB_ERR_CONFIG` if the port is taken. */
  static async start(options: ExporterOptions): Promise<Exporter> {
    const redis = createRedisConnection({ url: options.redisUrl, name: 'gembatch-exporter' });
    // Scrapes report Redis outages as gembatch_exporter_redis_up 0; connection errors need no other handling.
    redis.on('error', () => undefined);
    // On a Redis Cluster the prefix carries a hash tag, as the API and workers write it.
    const metrics = new FleetMetrics({
      redis,
      prefix: redisKeyPrefix(options.prefix, options.redisUrl),
      ...(options.readTimeoutMs ? { readTimeoutMs: options.readTimeoutMs } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    try {
      const server = await startMetricsServer({
        registry: metrics.registry,
        port: options.port ?? DEFAULT_EXPORTER_PORT,
        host: options.host ?? '127.0.0.1',
        ...(options.logger ? { logger: options.logger } : {}),
      });
      // The exporter's own event-loop lag, beside the fleet's families.
      const watchdog = await startEventLoopWatchdog({ registry: metrics.registry });
      return new Exporter(redis, metrics, server, watchdog);
    } catch (error) {
      await metrics.close();
      await closeRedisConnection(redis);
      throw error;
    }
  }

  /** URL of the fleet `/metrics`. */
  get url(): string {
    return this.#server.url;
  }

  /** The port it listens on. */
  get port(): number {
    return this.#server.port;
  }

  /** Stops serving, releases the queue handles and closes Redis. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#server.close();
      await this.#watchdog.close();
      await this.#metrics.close();
      await closeRedisConnection(this.#redis);
    })();
    return this.#closing;
  }
}
