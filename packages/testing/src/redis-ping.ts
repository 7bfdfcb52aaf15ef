import { setTimeout as delay } from 'node:timers/promises';
import { pingRedisOnce } from '@gembatch/config';
import { GembatchError } from '@gembatch/contracts';

/** Pause between connection attempts while the server boots: short, since Redis starts in milliseconds. */
const RETRY_INTERVAL_MS = 25;
/** Bound on one attempt, so a half-open socket cannot eat the whole budget. */
const ATTEMPT_TIMEOUT_MS = 1_000;

export interface WaitForRedisPingOptions {
  /** Give up after this many milliseconds. Defaults to `15000` (a machine with few, busy cores can be slow to fork). */
  timeoutMs?: number;
  /** Stops waiting early, e.g. when the server process exits. Defaults to none. */
  signal?: AbortSignal;
}

/**
 * Waits until a Redis server on `host:port` answers `PING` with `PONG` (a server still loading its
 * AOF answers `-LOADING` and is waited for). Uses a raw socket so nothing reconnects behind the
 * caller's back. Throws `GB_ERR_SERVICE_UNAVAILABLE` when the time is up.
 */
export async function waitForRedisPing(
  host: string,
  port: number,
  options: WaitForRedisPingOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer';
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted();
    const answer = await pingRedisOnce(host, port, Math.min(ATTEMPT_TIMEOUT_MS, Math.max(1, deadline - Date.now())));
    if (answer === '+PONG') return;
    lastProblem = answer;
    await delay(RETRY_INTERVAL_MS);
  }
  throw new GembatchError(
    'GB_ERR_SERVICE_UNAVAILABLE',
    `Redis on ${host}:${port} did not answer PING within ${timeoutMs} ms (last: ${lastProblem})`,
    {
      details: { host, port, timeoutMs },
    },
  );
}
