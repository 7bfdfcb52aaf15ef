import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** Connection states in which Redis is unreachable: a Queue's start-up waits for the next `ready`. */
const DOWN_STATES = new Set(['close', 'reconnecting']);

/**
 * Closes a BullMQ `Queue` that shares `connection` with its caller, so that the caller may quit the
 * connection next without leaving anything behind.
 *
 * A `Queue` starts up on the connection when it is built (waits for `ready`, then sends `INFO` for
 * its version check). BullMQ's `close()` on a shared connection neither waits for that nor keeps the
 * listener its failure is reported to, so a Queue closed early, whose connection is then quit, turns
 * the cut start-up into an unhandled "Connection is closed." rejection (which ends a Node process).
 * So: while Redis is reachable, start-up is awaited first (it settles within a round trip). While
 * Redis is down it may not settle until the connection ends, so this returns at once and closes the
 * Queue when start-up settles: its failure then still reaches the Queue's listener.
 */
export async function closeSharedQueue(queue: Queue, connection: Redis): Promise<void> {
  // A failed start-up was already reported to the Queue's 'error' listener; settling is what matters.
  const started = queue.waitUntilReady().then(
    () => undefined,
    () => undefined,
  );
  if (await settledWhileUp(started, connection)) {
    await queue.close();
    return;
  }
  void started.then(() => queue.close()).catch(() => undefined);
}

/** `true` once `started` settles, `false` as soon as the connection is (or goes) down first. */
function settledWhileUp(started: Promise<void>, connection: Redis): Promise<boolean> {
  if (DOWN_STATES.has(connection.status)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const down = () => finish(false);
    const finish = (settled: boolean) => {
      connection.off('close', down);
      connection.off('reconnecting', down);
      resolve(settled);
    };
    connection.on('close', down);
    connection.on('reconnecting', down);
    void started.then(() => finish(true));
  });
}
