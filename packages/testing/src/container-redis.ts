import { GembatchError } from '@gembatch/contracts';
import { RedisContainer, type StartedRedisContainer } from '@testcontainers/redis';
import { findFreePort } from '@gembatch/config';
import type { RestartOptions } from './spawned-redis.ts';

/** Redis's port inside the container. */
const REDIS_PORT = 6379;
/** Milliseconds Docker waits after SIGTERM (AOF flush) before SIGKILL on a soft restart (testcontainers takes ms). */
const STOP_GRACE_MS = 10_000;
/** The image the tests run against: the major version production uses. */
const REDIS_IMAGE = 'redis:7';

export interface ContainerRedisOptions {
  /** Turn on the append-only file, so data survives `restart()`. Defaults to `false`. */
  appendOnly?: boolean;
}

/** A Redis container (testcontainers) bound to a fixed host port, so its URL survives restarts. */
export interface ContainerRedis {
  readonly url: string;
  restart(options?: RestartOptions): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts `redis:7` with testcontainers. The host port is picked up front and bound explicitly,
 * because Docker may hand out a different random port after a restart. Data lives in the
 * container's own `/data`, which a restart keeps.
 */
export async function startContainerRedis(options: ContainerRedisOptions = {}): Promise<ContainerRedis> {
  const hostPort = await findFreePort();
  const container: StartedRedisContainer = await new RedisContainer(REDIS_IMAGE)
    .withCommand(['redis-server', '--save', '', '--appendonly', options.appendOnly ? 'yes' : 'no'])
    .withExposedPorts({ container: REDIS_PORT, host: hostPort })
    .start();
  const url = `redis://${container.getHost()}:${container.getMappedPort(REDIS_PORT)}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    async restart(restartOptions: RestartOptions = {}) {
      if (restartOptions.downMs)
        throw new GembatchError(
          'GB_ERR_CONFIG',
          'restart({downMs}) needs a spawned redis-server (startRedis({mode: "spawn"}))',
        );
      await container.restart({ timeout: restartOptions.hard ? 0 : STOP_GRACE_MS });
    },
    close() {
      closing ??= container.stop().then(() => undefined);
      return closing;
    },
  };
}
