import { connect } from 'node:net';

/**
 * One `PING` to a Redis server over a raw socket (nothing reconnects behind the caller's back):
 * resolves with the first reply line (`+PONG`, or `-LOADING …` while it reads its AOF), or a short
 * description of what went wrong (`ECONNREFUSED`, `timeout`, `closed`). Never rejects.
 *
 * @param timeoutMs Bound on the attempt, so a half-open socket cannot hang the caller.
 */
export async function pingRedisOnce(host: string, port: number, timeoutMs: number): Promise<string> {
  return await new Promise<string>((resolve) => {
    let reply = '';
    let settled = false;
    const socket = connect({ host, port });
    const finish = (answer: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      const end = reply.indexOf('\r\n');
      if (end >= 0) finish(reply.slice(0, end));
    });
    socket.once('close', () => finish(reply === '' ? 'closed' : reply.trim()));
  });
}
