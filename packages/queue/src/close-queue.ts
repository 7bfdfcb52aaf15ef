import type { Queue } from 'bullmq';

/**
 * Closes a BullMQ `Queue` that shares its caller's connection, once the Queue's own start-up has
 * settled. A `Queue` begins a version check (`INFO`) on the connection when it is built; BullMQ's
 * `close()` on a shared connection neither waits for it nor keeps a listener for its failure, so a
 * Queue closed early, whose connection the owner then quits, turns the cut `INFO` into an unhandled
 * "Connection is closed." rejection (which crashes a Node process). Waiting first leaves nothing in
 * flight: start-up settles as soon as the connection is ready (one round trip) or ends. During an
 * outage that began before the Queue ever connected, it waits for Redis to come back (the service's
 * drain timeout bounds that).
 */
export async function closeSharedQueue(queue: Queue): Promise<void> {
  // A failed start-up was already reported to the Queue's 'error' listener; closing is what matters here.
  await queue.waitUntilReady().catch(() => undefined);
  await queue.close();
}
