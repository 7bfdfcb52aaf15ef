import { firstReplyLine } from './socket-probe.ts';

/**
 * One `PING` to a Redis server over a raw socket (nothing reconnects behind the caller's back):
 * resolves with the first reply line (`+PONG`, or `-LOADING …` while it reads its AOF), or a short
 * description of what went wrong (`ECONNREFUSED`, `timeout`, `closed`). Never rejects.
 *
 * @param timeoutMs Bound on the attempt, so a half-open socket cannot hang the caller.
 */
export async function pingRedisOnce(host: string, port: number, timeoutMs: number): Promise<string> {
  return await firstReplyLine({ host, port }, 'PING\r\n', timeoutMs);
}
