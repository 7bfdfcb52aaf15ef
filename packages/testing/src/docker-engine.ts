import { existsSync } from 'node:fs';
import { firstReplyLine, type ProbeTarget } from '@gembatch/config';

/** How long to wait for a Docker engine to answer `/_ping` before deciding there is none. */
const DEFAULT_PING_TIMEOUT_MS = 1_000;

/**
 * Whether a Docker engine answers on `DOCKER_HOST` (unix:// or tcp://) or `/var/run/docker.sock`.
 * A docker CLI without an engine, a socket file nobody listens on, or a slow engine all give
 * `false` within `timeoutMs`, so callers can fall back to another way of getting a service.
 *
 * @param timeoutMs Upper bound on the whole check. Defaults to `1000`.
 * @param env Environment read for `DOCKER_HOST`. Defaults to `process.env`.
 */
export async function isDockerEngineReachable(
  timeoutMs = DEFAULT_PING_TIMEOUT_MS,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  const target = dockerTarget(env.DOCKER_HOST);
  if (target === undefined) return false;
  if ('path' in target && !existsSync(target.path)) return false;
  const reply = await firstReplyLine(target, 'GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n', timeoutMs);
  return /^HTTP\/1\.[01] 200/.test(reply);
}

function dockerTarget(dockerHost: string | undefined): ProbeTarget | undefined {
  if (dockerHost === undefined || dockerHost === '') return { path: '/var/run/docker.sock' };
  if (dockerHost.startsWith('unix://')) return { path: dockerHost.slice('unix://'.length) };
  if (dockerHost.startsWith('tcp://')) {
    const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
    // 2375 is Docker's registered plain-TCP port.
    return { host: url.hostname, port: url.port === '' ? 2375 : Number(url.port) };
  }
  return undefined;
}
