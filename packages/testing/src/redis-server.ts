import { GembatchError } from '@gembatch/contracts';
import { isDockerEngineReachable } from './docker-engine.ts';
import { startSpawnedRedis, type RestartOptions } from './spawned-redis.ts';
import { startContainerRedis } from './container-redis.ts';

export type { RestartOptions } from './spawned-redis.ts';

/** Where a test Redis comes from. */
export type RedisMode = 'url' | 'container' | 'spawn';

export interface StartRedisOptions {
  /**
   * Run the server with the append-only file on, so data survives `restart()`. Only a server this
   * process starts can be configured, so in `auto` mode this skips `REDIS_URL`. Defaults to `false`.
   */
  appendOnly?: boolean;
  /**
   * `auto`: `REDIS_URL` if set (and `appendOnly` is off), else a `redis:7` container when a Docker
   * engine answers within ~1 s, else `redis-server` from PATH. `url`, `container` and `spawn` force one.
   * Defaults to `auto`.
   */
  mode?: 'auto' | RedisMode;
  /** Environment read for `REDIS_URL`, `DOCKER_HOST` and `PATH`. Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** A Redis server for tests. */
export interface RedisHandle {
  /** `redis://host:port` to connect to. */
  readonly url: string;
  readonly mode: RedisMode;
  /**
   * Stops the server and starts it again on the same port and data dir (with `appendOnly`, data
   * is kept). Only for `spawn` and `container`; an external `url` server throws `GB_ERR_CONFIG`.
   */
  restart(options?: RestartOptions): Promise<void>;
  /** Stops the server (if this process started it) and removes its data. Idempotent. */
  close(): Promise<void>;
}

/**
 * Gets a Redis server for tests: an external one (`REDIS_URL`), a container, or a spawned
 * `redis-server` on a free port with a temp data dir. See `StartRedisOptions.mode`.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisHandle> {
  const env = options.env ?? process.env;
  const mode = await resolveMode(options.mode ?? 'auto', options.appendOnly ?? false, env);
  if (mode === 'url') return urlHandle(env.REDIS_URL);
  const server =
    mode === 'container' ? await startContainerRedis(options) : await startSpawnedRedis({ ...options, env });
  return {
    url: server.url,
    mode,
    restart: (restartOptions?: RestartOptions) => server.restart(restartOptions),
    close: () => server.close(),
  };
}

async function resolveMode(
  requested: 'auto' | RedisMode,
  appendOnly: boolean,
  env: NodeJS.ProcessEnv,
): Promise<RedisMode> {
  if (requested !== 'auto') return requested;
  if (env.REDIS_URL && !appendOnly) return 'url';
  return (await isDockerEngineReachable(undefined, env)) ? 'container' : 'spawn';
}

function urlHandle(url: string | undefined): RedisHandle {
  if (!url) throw new GembatchError('GB_ERR_CONFIG', 'mode "url" needs REDIS_URL (e.g. redis://127.0.0.1:6379)');
  if (!/^rediss?:\/\//.test(url))
    throw new GembatchError('GB_ERR_CONFIG', 'REDIS_URL must start with redis:// or rediss://');
  return {
    url,
    mode: 'url',
    restart: async () => {
      throw new GembatchError(
        'GB_ERR_CONFIG',
        'restart() needs a Redis this process started (mode "spawn" or "container"); REDIS_URL points at an external server',
      );
    },
    close: async () => {},
  };
}
