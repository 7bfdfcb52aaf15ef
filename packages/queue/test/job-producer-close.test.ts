import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect } from 'vitest';
import { openTestRedis, redisTest } from '@gembatch/testing';
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
      const connection = openTestRedis(redis.url, { name: `${redis.prefix}:producer-${round}`, redisOptions: { lazyConnect: true } });
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
});
