import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from './redis-url.ts';

export interface RedisConnectionOptions {
  /**
   * `redis://[user:pass@]host:port[/db]` (or `rediss://` for TLS), a Cluster
   * (`redis+cluster://h1:p1,h2:p2` or a comma-separated list of `redis://` URLs) or Sentinel
   * (`redis+sentinel://s1:p1,s2:p2/mastername`); see {@link parseRedisUrl}.
   */
  url: string;
  /** Name shown in `CLIENT LIST`, e.g. `gembatch-api`. */
  name: string;
  /**
   * `true` for connections used by BullMQ workers and blocking commands: never give up on a
   * command (BullMQ requires `maxRetriesPerRequest: null`). `false` for request/response paths
   * (the API), which should fail fast when Redis is down. Defaults to `false`.
   */
  blocking?: boolean;
  /**
   * Where the connection reports an outage: one warn line when Redis is lost, one info line when it
   * is back (with how long it was down), never a line per reconnect attempt. Defaults to none (the
   * outage is not logged; the connection still has its error listener, so ioredis prints no dumps).
   */
  logger?: RedisConnectionLogger;
}

/** The logger calls a connection makes (pino's shape, kept structural). */
export interface RedisConnectionLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** Back off up to 2 s between reconnects; never stop trying (Redis restarts must not kill services). */
const retryStrategy = (attempt: number) => Math.min(attempt * 100, 2_000);

/**
 * Opens an ioredis connection configured the way BullMQ needs it: a `Redis` for one server or a
 * Sentinel-managed master (which follows a failover by asking the sentinels again), an ioredis
 * `Cluster` for a Redis Cluster. The caller owns it and must `quit()` it; BullMQ classes given
 * this connection do not close it.
 *
 * A `Cluster` is returned typed as `Redis`: gembatch uses only commands both have (keyed commands,
 * MULTI, pub/sub, `duplicate`), every key under one hash-tagged prefix ({@link redisKeyPrefix}),
 * and BullMQ recognises a cluster connection itself (`isCluster`). The Cluster test in
 * `packages/cli/test/redis-cluster.test.ts` runs the whole stack on one.
 */
export function createRedisConnection(options: RedisConnectionOptions): Redis {
  const target = parseRedisUrl(options.url);
  const config: RedisOptions = {
    connectionName: options.name,
    maxRetriesPerRequest: options.blocking ? null : 2,
    retryStrategy,
    lazyConnect: false,
  };
  let redis: Redis;
  if (target.kind === 'single') {
    redis = new Redis(target.url, config);
  } else if (target.kind === 'sentinel') {
    redis = new Redis({
      ...config,
      sentinels: target.sentinels,
      name: target.masterName,
      db: target.db,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
      // Sentinels answer within a reconnect period; keep asking through a failover.
      sentinelRetryStrategy: retryStrategy,
      // Leave the old master as soon as a sentinel announces +switch-master: until Sentinel demotes it
      // (seconds later) it still takes writes, and those are lost when it resyncs from the new one.
      failoverDetector: true,
      // After a failover the old master turns replica and refuses writes (READONLY): reconnect to the new one.
      reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 2 : false),
    });
  } else {
    const cluster = new Cluster(target.nodes, {
      redisOptions: {
        connectionName: options.name,
        ...(target.username ? { username: target.username } : {}),
        ...(target.password ? { password: target.password } : {}),
        ...(target.tls ? { tls: {} } : {}),
        maxRetriesPerRequest: options.blocking ? null : 2,
      },
      clusterRetryStrategy: retryStrategy,
      lazyConnect: false,
    });
    redis = cluster as unknown as Redis;
  }
  reportOutages(redis, options.name, options.logger);
  return redis;
}

/**
 * Gives `redis` its error listener (without one, ioredis prints a multi-line `Unhandled error
 * event` dump per failed reconnect, every 2 s of an outage) and logs each outage as two lines.
 */
export function reportOutages(redis: Redis, name: string, logger?: RedisConnectionLogger): void {
  let downSince: number | undefined;
  redis.on('error', (error: Error & { code?: string }) => {
    if (downSince !== undefined) return;
    downSince = Date.now();
    logger?.warn({ connection: name, code: error.code, err: error.message }, 'redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (downSince === undefined) return;
    logger?.info({ connection: name, downMs: Date.now() - downSince }, 'redis connection restored');
    downSince = undefined;
  });
}

/** Closes a connection politely, falling back to disconnect if Redis does not answer in time. Idempotent. */
export async function closeRedisConnection(redis: Redis, timeoutMs = 2_000): Promise<void> {
  if (redis.status === 'end') return;
  const timer = setTimeout(() => redis.disconnect(), timeoutMs);
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  } finally {
    clearTimeout(timer);
  }
}
