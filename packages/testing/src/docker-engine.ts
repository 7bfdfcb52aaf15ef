import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

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
export async function isDockerEngineReachable(timeoutMs = DEFAULT_PING_TIMEOUT_MS, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const target = dockerTarget(env.DOCKER_HOST);
  if (target === undefined) return false;
  if ('path' in target && !existsSync(target.path)) return false;
  return await new Promise<boolean>((resolve) => {
    let settled = false;
    let answer = '';
    const socket: Socket = connect(target);
    const finish = (reachable: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reachable);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n'));
    socket.on('data', (chunk: string) => {
      answer += chunk;
      if (/^HTTP\/1\.[01] 200/.test(answer)) finish(true);
      else if (answer.includes('\r\n')) finish(false);
    });
    socket.once('close', () => finish(false));
  });
}

function dockerTarget(dockerHost: string | undefined): { path: string } | { host: string; port: number } | undefined {
  if (dockerHost === undefined || dockerHost === '') return { path: '/var/run/docker.sock' };
  if (dockerHost.startsWith('unix://')) return { path: dockerHost.slice('unix://'.length) };
  if (dockerHost.startsWith('tcp://')) {
    const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
    // 2375 is Docker's registered plain-TCP port.
    return { host: url.hostname, port: url.port === '' ? 2375 : Number(url.port) };
  }
  return undefined;
}
