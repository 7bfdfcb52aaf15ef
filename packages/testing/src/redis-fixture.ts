import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { onTestFinished, test } from 'vitest';
import { startRedis, type RedisHandle } from './redis-server.ts';
import {
  currentTrackingSerial,
  describeLeaks,
  disconnectAll,
  findLeakedConnections,
  DEFAULT_SETTLE_MS,
} from './redis-leaks.ts';
import { listRedisClients, readRunId, type RedisClientInfo } from './redis-client-list.ts';

/** Poll interval while waiting for server-side client entries of closed connections to go away. */
const SERVER_POLL_MS = 25;
/** Keys deleted per UNLINK while cleaning a test's prefix. */
const UNLINK_BATCH = 500;

/** What each `redisTest` gets: a server URL and a key prefix no other test uses. */
export interface RedisTestContext {
  /** `redis://host:port` of this file's server. */
  url: string;
  /** `gbt-<12 hex>`: pass it as BullMQ's `prefix` and to `redisKeys.*`; its keys are deleted after the test. */
  prefix: string;
}

/** The file's server plus the fixture's own connection for cleanup and leak checks. */
interface FileRedis {
  handle: RedisHandle;
  admin: Redis;
  /** Tests of this file running right now (more than one only with `test.concurrent`). */
  running: number;
}

const fileState = new WeakMap<RedisHandle, FileRedis>();

/** Anything with a close method: BullMQ Queue/Worker/QueueEvents/FlowProducer, ioredis, servers. */
export type Closable = { close(): unknown } | { quit(): unknown } | { disconnect(): unknown };

/**
 * Closes `closable` when the current test finishes (pass or fail), before the Redis leak check
 * runs. Call it inside a test (not in `beforeAll`); returns its argument:
 * `const queue = closeAfterTest(new Queue(...))`.
 * `close()` is preferred, then ioredis `quit()` (falling back to `disconnect()` if Redis is gone).
 */
export function closeAfterTest<T extends Closable>(closable: T): T {
  onTestFinished(async () => {
    await closeNow(closable);
  });
  return closable;
}

async function closeNow(closable: Closable): Promise<void> {
  if ('close' in closable) {
    await closable.close();
    return;
  }
  if ('quit' in closable) {
    try {
      await closable.quit();
      return;
    } catch {
      // Redis already gone (e.g. a test stopped it): drop the socket instead.
    }
  }
  if ('disconnect' in closable) await closable.disconnect();
}

/**
 * A Vitest `test` with Redis: one server per test file (`REDIS_URL`, a container or a spawned
 * `redis-server`, see `startRedis`), and per test a unique `prefix` whose keys are deleted when
 * the test finishes. The test fails if it leaves open any connection it made through
 * `openTestRedis`/`trackRedis`, any client named under its prefix (BullMQ names Worker and
 * QueueEvents connections `<prefix>:...`), or, on a server of its own file, any new connection at
 * all. Close what you open with `closeAfterTest` or `afterEach`.
 *
 * `redisServer` is the file's `RedisHandle` (for `restart()` in fault tests).
 */
export const redisTest = test.extend<{ $test: { redis: RedisTestContext }; $file: { redisServer: RedisHandle } }>({
  redisServer: [
    // eslint-disable-next-line no-empty-pattern -- Vitest reads fixture dependencies from this pattern.
    async ({}, use) => {
      const handle = await startRedis();
      const admin = new Redis(handle.url, { connectionName: 'gembatch-testing-admin', maxRetriesPerRequest: null });
      fileState.set(handle, { handle, admin, running: 0 });
      try {
        await use(handle);
      } finally {
        await admin.quit().catch(() => admin.disconnect());
        await handle.close();
      }
    },
    { scope: 'file' },
  ],
  redis: async ({ redisServer, onTestFinished }, use) => {
    const file = fileState.get(redisServer);
    if (!file) throw new Error('redisTest: the file-scoped Redis server was not set up');
    const prefix = `gbt-${randomBytes(6).toString('hex')}`;
    const sinceSerial = currentTrackingSerial();
    const runId = await readRunId(file.admin);
    const maxClientIdBefore = Math.max(0, ...(await listRedisClients(file.admin)).map((client) => client.id));
    file.running++;
    const concurrent = file.running > 1;
    // Registered before the test body runs, so it runs after every onTestFinished/closeAfterTest
    // the test registers (Vitest runs them in reverse order of registration).
    onTestFinished(async () => {
      file.running--;
      const ownsServer =
        redisServer.mode !== 'url' && !concurrent && file.running === 0 && (await readRunId(file.admin)) === runId;
      // One settle budget for both checks, so a leaking test waits at most DEFAULT_SETTLE_MS.
      const settleUntil = Date.now() + DEFAULT_SETTLE_MS;
      const clientLeaks = await findLeakedConnections(sinceSerial);
      const serverLeaks = await findServerLeaks(
        file.admin,
        prefix,
        ownsServer ? maxClientIdBefore : undefined,
        Math.max(0, settleUntil - Date.now()),
      );
      disconnectAll(clientLeaks);
      await deleteKeys(file.admin, prefix);
      const problems: string[] = [];
      if (clientLeaks.length > 0) problems.push(describeLeaks(clientLeaks));
      if (serverLeaks.length > 0) problems.push(describeServerLeaks(serverLeaks));
      if (problems.length > 0) {
        throw new Error(
          `Redis connections left open by this test (close them with closeAfterTest or afterEach):\n${problems.join('\n')}`,
        );
      }
    });
    await use({ url: redisServer.url, prefix });
  },
});

/**
 * Clients the server still lists that a finished test left behind: those named under `prefix`,
 * and (when `newerThanId` is given, i.e. the file owns the server) every client with a larger id
 * than before the test, except the caller's own.
 *
 * @param newerThanId Also count every client with a larger id. Defaults to none (names only).
 * @param settleMs Longest wait for closing sockets to disappear. Defaults to `DEFAULT_SETTLE_MS` (2 s).
 */
export async function findServerLeaks(
  admin: Redis,
  prefix: string,
  newerThanId?: number,
  settleMs = DEFAULT_SETTLE_MS,
): Promise<RedisClientInfo[]> {
  const ownId = Number(await admin.client('ID'));
  const deadline = Date.now() + settleMs;
  for (;;) {
    const leaks = (await listRedisClients(admin)).filter(
      (client) =>
        client.id !== ownId &&
        (client.name === prefix ||
          client.name.startsWith(`${prefix}:`) ||
          (newerThanId !== undefined && client.id > newerThanId)),
    );
    if (leaks.length === 0 || Date.now() >= deadline) return leaks;
    await delay(SERVER_POLL_MS);
  }
}

function describeServerLeaks(leaks: readonly RedisClientInfo[]): string {
  return leaks
    .map(
      (client) =>
        `  - server still has client id=${client.id} name="${client.name || '(unnamed)'}" last command ${client.cmd || '?'} from ${client.addr}`,
    )
    .join('\n');
}

/** Deletes every key starting with `prefix` (SCAN + UNLINK, never KEYS or FLUSHALL: the server may be shared). */
export async function deleteKeys(admin: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', UNLINK_BATCH);
    cursor = next;
    if (keys.length > 0) deleted += await admin.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}
