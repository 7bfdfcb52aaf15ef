import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, onTestFailed } from 'vitest';
import {
  closeAfterTest,
  findLeakedConnections,
  findServerLeaks,
  currentTrackingSerial,
  openTestRedis,
  redisTest,
} from '../src/index.ts';

/** Keys a previous test wrote, to check in a later test that the fixture removed them. */
let previous: { prefix: string; url: string } | undefined;
let closedByFixture = false;

describe('redisTest', () => {
  redisTest('gives a URL and a fresh prefix', async ({ redis }) => {
    expect(redis.prefix).toMatch(/^gbt-[0-9a-f]{12}$/);
    const connection = closeAfterTest(openTestRedis(redis.url));
    await connection.set(`${redis.prefix}:a`, '1');
    await connection.hset(`${redis.prefix}:queue:b`, 'f', 'v');
    await connection.set('unrelated-key', 'kept');
    previous = { prefix: redis.prefix, url: redis.url };
  });

  redisTest("deleted the previous test's keys and only those", async ({ redis }) => {
    expect(previous).toBeDefined();
    expect(redis.prefix).not.toBe(previous?.prefix);
    expect(redis.url).toBe(previous?.url);
    const connection = closeAfterTest(openTestRedis(redis.url));
    expect(await connection.keys(`${previous?.prefix}*`)).toEqual([]);
    expect(await connection.get('unrelated-key')).toBe('kept');
    await connection.del('unrelated-key');
  });

  redisTest('closeAfterTest takes ioredis connections and anything with close()', async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url, { blocking: true }));
    closeAfterTest({ close: async () => void (closedByFixture = true) });
    expect(await connection.ping()).toBe('PONG');
  });

  redisTest('closeAfterTest ran after the previous test', () => {
    expect(closedByFixture).toBe(true);
  });

  redisTest.fails('fails a test that leaves a tracked connection open', async ({ redis }) => {
    const leaked = openTestRedis(redis.url, { name: 'leaky' });
    await leaked.ping();
  });

  redisTest.fails(
    'fails a test that leaves a client named under its prefix open (BullMQ naming)',
    async ({ redis }) => {
      const untracked = new Redis(redis.url, { connectionName: `${redis.prefix}:d29yaw==:w:x` });
      onTestFailed(() => untracked.disconnect());
      await untracked.ping();
    },
  );

  redisTest
    .skipIf(Boolean(process.env.REDIS_URL))
    .fails('fails a test that leaves any new connection open on its own server', async ({ redis, redisServer }) => {
      expect(redisServer.mode).not.toBe('url');
      const untracked = new Redis(redis.url);
      onTestFailed(() => untracked.disconnect());
      await untracked.ping();
    });
});

describe('with BullMQ', () => {
  redisTest('a queue, worker and events closed with closeAfterTest pass the leak check', async ({ redis }) => {
    const connection = { url: redis.url };
    const queue = closeAfterTest(new Queue('work', { connection, prefix: redis.prefix }));
    const events = closeAfterTest(new QueueEvents('work', { connection, prefix: redis.prefix }));
    const worker = closeAfterTest(
      new Worker('work', async (job) => (job.data as { n: number }).n * 2, { connection, prefix: redis.prefix }),
    );
    await Promise.all([events.waitUntilReady(), worker.waitUntilReady()]);
    const job = await queue.add('double', { n: 21 });
    expect(await job.waitUntilFinished(events, 10_000)).toBe(42);
  });

  redisTest.fails('a worker left running fails the test', async ({ redis }) => {
    const worker = new Worker('work', async () => 'done', { connection: { url: redis.url }, prefix: redis.prefix });
    onTestFailed(() => worker.close(true));
    await worker.waitUntilReady();
  });
});

describe('leak checkers', () => {
  redisTest('findLeakedConnections reports an unclosed tracked connection until it is closed', async ({ redis }) => {
    const since = currentTrackingSerial();
    const earlier = closeAfterTest(openTestRedis(redis.url));
    const since2 = currentTrackingSerial();
    const connection = openTestRedis(redis.url, { name: 'checked' });
    await connection.ping();
    const leaks = await findLeakedConnections(since2, 50);
    expect(leaks.map((leak) => leak.connection)).toEqual([connection]);
    expect(leaks[0]?.openedAt).toContain('redis-fixture.test.ts');
    expect((await findLeakedConnections(since, 50)).length).toBe(2);
    await connection.quit();
    expect(await findLeakedConnections(since2)).toEqual([]);
    expect(earlier.status).not.toBe('end');
  });

  redisTest('findServerLeaks sees a client named under the prefix, and new clients past an id', async ({ redis }) => {
    const admin = closeAfterTest(openTestRedis(redis.url, { name: 'admin' }));
    const ownId = Number(await admin.client('ID'));
    const named = closeAfterTest(openTestRedis(redis.url, { name: `${redis.prefix}:events` }));
    await named.ping();
    expect((await findServerLeaks(admin, redis.prefix, undefined, 50)).map((client) => client.name)).toEqual([
      `${redis.prefix}:events`,
    ]);
    const namedId = Number(await named.client('ID'));
    expect((await findServerLeaks(admin, 'gbt-other', ownId, 50)).map((client) => client.id)).toEqual([namedId]);
    await named.quit();
    expect(await findServerLeaks(admin, redis.prefix, ownId)).toEqual([]);
  });
});
