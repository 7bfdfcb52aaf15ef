import { connect } from 'node:net';

/** Where a probe connects: a TCP host and port, or a unix socket path. */
export type ProbeTarget = { host: string; port: number } | { path: string };

/**
 * Connects to `target`, writes `request`, and resolves with the first line of the reply (without
 * its CRLF), or a short description of what went wrong (`ECONNREFUSED`, `timeout`, `closed`).
 * Never rejects, and never reconnects: one attempt bounded by `timeoutMs`, so a half-open socket
 * cannot hang the caller. The base of `pingRedisOnce` and the test fixtures' Docker check.
 */
export async function firstReplyLine(target: ProbeTarget, request: string, timeoutMs: number): Promise<string> {
  return await new Promise<string>((resolve) => {
    let reply = '';
    let settled = false;
    const socket = connect(target);
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
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      const end = reply.indexOf('\r\n');
      if (end >= 0) finish(reply.slice(0, end));
    });
    socket.once('close', () => finish(reply === '' ? 'closed' : reply.trim()));
  });
}
