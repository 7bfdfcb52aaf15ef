import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findFreePort, openTestRedis, redisTest } from '@gembatch/testing';
import { closeRedisConnection, JobProducer } from '../src/index.ts';

/** Rejections nobody handled while a test ran (Node crashes the API on one in production). */
const unhandled: unknown[] = [];
const record = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', record);
});
afterEach(() => {
  process.off('unhandledRejection', record);
});

describe('JobProducer.close', () => {
  // Regression: BullMQ's Queue starts an INFO (version check) on the shared connection when it is
  // built. Closed before that finished, the Queue dropped its listeners and the INFO, cut by the
  // owner's quit, surfaced as an unhandled "Connection is closed." rejection.
  redisTest('right after construction, then closing the connection, leaves no command in flight', async ({ redis }) => {
    for (let round = 0; round < 5; round++) {
      // lazyConnect: the queues' initialization is still waiting for the connection when close() runs.
      const connection = openTestRedis(redis.url, {
        name: `${redis.prefix}:producer-${round}`,
        redisOptions: { lazyConnect: true },
      });
      const producer = new JobProducer({ connection, prefix: redis.prefix });
      await producer.close();
      const ended = once(connection, 'end');
      await closeRedisConnection(connection);
      await ended;
      // Rejections are reported after the microtask queue drains; give them one macrotask to show.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(unhandled.map(String)).toEqual([]);
  });

  // While Redis is unreachable the queues' start-up cannot settle until the connection ends: close()
  // must not wait for it (a service draining during an outage would hang), nor let its failure escape.
  it('during an outage returns at once, and ending the connection then leaves no rejection', async () => {
    const port = await findFreePort('127.0.0.1');
    // Why 50 ms: retry often, so the connection is surely down (reconnecting) when close() runs.
    const connection = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    connection.on('error', () => undefined);
    const producer = new JobProducer({ connection, prefix: 'gembatch-none' });
    // Not events.once: it would reject on the connection's first ECONNREFUSED 'error'.
    await new Promise((resolve) => connection.once('reconnecting', resolve));
    await producer.close();
    // Ended during a connection attempt (during the retry wait ioredis would never emit 'end'), so the
    // queues' waiting start-up fails now, after close().
    await new Promise((resolve) => connection.once('connecting', resolve));
    const ended = new Promise((resolve) => connection.once('end', resolve));
    connection.disconnect();
    await ended;
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled.map(String)).toEqual([]);
  });
});
