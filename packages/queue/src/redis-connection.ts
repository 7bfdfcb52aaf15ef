import { Redis, type RedisOptions } from 'ioredis';

export interface RedisConnectionOptions {
  /** `redis://[user:pass@]host:port[/db]` (or `rediss://` for TLS). */
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

/**
 * Opens an ioredis connection configured the way BullMQ needs it. The caller owns it and must
 * `quit()` it; BullMQ classes given this connection do not close it.
 */
export function createRedisConnection(options: RedisConnectionOptions): Redis {
  const config: RedisOptions = {
    connectionName: options.name,
    maxRetriesPerRequest: options.blocking ? null : 2,
    // Back off up to 2 s between reconnects; never stop trying (Redis restarts must not kill services).
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    lazyConnect: false,
  };
  const redis = new Redis(options.url, config);
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
