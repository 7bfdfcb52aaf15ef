import { createServer } from 'node:net';

/**
 * Asks the kernel for a TCP port that is free right now on `host` (binds port 0, reads the port,
 * releases it). Another process may still take it before the caller binds, so callers that spawn
 * a server retry on "address in use".
 *
 * @param host Interface to probe. Defaults to `127.0.0.1`.
 */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() => (port === undefined ? reject(new Error('the kernel gave no port')) : resolve(port)));
    });
  });
}
