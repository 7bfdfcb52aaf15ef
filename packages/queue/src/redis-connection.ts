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
  return new Redis(options.url, config);
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
