import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { GembatchError } from '@gembatch/contracts';
import { startSpawnedRedis, type SpawnedRedis } from './spawned-redis.ts';

const run = promisify(execFile);
/** Bound on a cluster agreeing on its slots, or a sentinel finding its replica (tens of ms on loopback; generous for a busy machine). */
const SETTLE_TIMEOUT_MS = 30_000;
/** Poll period while waiting for a topology to settle. */
const POLL_MS = 100;

/** A Redis Cluster of spawned servers on loopback. */
export interface SpawnedRedisCluster {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`, the form gembatch's `REDIS_URL` takes. */
  readonly url: string;
  readonly masters: readonly SpawnedRedis[];
  /** Every key matching `pattern` on every master, with the hash slot and the master's port. */
  keys(pattern: string): Promise<Array<{ key: string; slot: number; port: number }>>;
  close(): Promise<void>;
}

/**
 * Starts `masters` `redis-server --cluster-enabled yes` processes (each its own port and data dir,
 * via {@link startSpawnedRedis}), joins them with `redis-cli --cluster create ... --cluster-replicas 0`,
 * and waits until every node reports `cluster_state:ok`. Defaults to 3 masters (the fewest
 * `redis-cli --cluster create` accepts).
 */
export async function startRedisCluster(masters = 3): Promise<SpawnedRedisCluster> {
  const servers: SpawnedRedis[] = [];
  const close = async () => {
    await Promise.all(servers.map((s) => s.close()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      // Why 2000 ms: a node is marked failing after this; the tests never fail one, so it only bounds start-up gossip.
      servers.push(
        await startSpawnedRedis({
          extraArgs: () => [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '2000',
          ],
        }),
      );
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: SETTLE_TIMEOUT_MS,
    });
    await waitUntil(async () => {
      const states = await Promise.all(
        servers.map((s) => withClient(s.port, async (c) => String(await c.call('CLUSTER', 'INFO')))),
      );
      return states.every((info) => info.includes('cluster_state:ok'));
    }, 'the cluster did not reach cluster_state:ok');
    const keys = async (pattern: string) => {
      const found: Array<{ key: string; slot: number; port: number }> = [];
      for (const server of servers) {
        await withClient(server.port, async (c) => {
          let cursor = '0';
          do {
            const [next, batch] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
            cursor = next;
            for (const key of batch)
              found.push({ key, slot: Number(await c.call('CLUSTER', 'KEYSLOT', key)), port: server.port });
          } while (cursor !== '0');
        });
      }
      return found;
    };
    return { url: `redis+cluster://${addresses.join(',')}`, masters: servers, keys, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A master, one replica and one Sentinel watching them, all spawned on loopback. */
export interface SpawnedRedisSentinel {
  /** `redis+sentinel://127.0.0.1:<sentinel port>/<masterName>`, the form gembatch's `REDIS_URL` takes. */
  readonly url: string;
  readonly masterName: string;
  readonly master: SpawnedRedis;
  readonly replica: SpawnedRedis;
  readonly sentinel: SpawnedRedis;
  /** Port of the server Sentinel currently names as master. */
  currentMasterPort(): Promise<number>;
  /**
   * `SENTINEL FAILOVER`: promotes the replica without the master's agreement (one sentinel, quorum 1);
   * resolves once Sentinel names the other server as master and the old master has turned replica.
   * Until then the old master still takes writes from clients that have not moved, and Redis drops
   * them when it resyncs (replication is asynchronous): a failover is not over before that.
   */
  failover(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Starts a master, a replica (`--replicaof`) and a Sentinel (`--sentinel`, quorum 1, the master
 * deemed down after 1 s) and waits until the sentinel knows the replica, so a failover can happen.
 */
export async function startRedisSentinel(masterName = 'gembatch-master'): Promise<SpawnedRedisSentinel> {
  const servers: SpawnedRedis[] = [];
  const close = async () => {
    // Sentinel first, so it does not react to the others going away.
    for (const server of [...servers].reverse()) await server.close();
  };
  try {
    const master = await startSpawnedRedis();
    servers.push(master);
    const replica = await startSpawnedRedis({ extraArgs: () => ['--replicaof', '127.0.0.1', String(master.port)] });
    servers.push(replica);
    const sentinel = await startSpawnedRedis({
      configFile: {
        name: 'sentinel.conf',
        // Why 1000/5000 ms: a dead master is noticed within a second and a failover retried after five, so the test stays short.
        text: () =>
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1\nsentinel down-after-milliseconds ${masterName} 1000\nsentinel failover-timeout ${masterName} 5000\n`,
      },
      extraArgs: () => ['--sentinel'],
    });
    servers.push(sentinel);
    await waitUntil(
      async () =>
        withClient(replica.port, async (c) => String(await c.info('replication')).includes('master_link_status:up')),
      'the replica did not sync',
    );
    await waitUntil(
      async () =>
        withClient(
          sentinel.port,
          async (c) => ((await c.call('SENTINEL', 'REPLICAS', masterName)) as unknown[]).length > 0,
        ),
      'the sentinel did not find the replica',
    );
    const currentMasterPort = () =>
      withClient(sentinel.port, async (c) =>
        Number(((await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as string[])[1]),
      );
    return {
      url: `redis+sentinel://127.0.0.1:${sentinel.port}/${masterName}`,
      masterName,
      master,
      replica,
      sentinel,
      currentMasterPort,
      async failover() {
        const before = await currentMasterPort();
        await withClient(sentinel.port, (c) => c.call('SENTINEL', 'FAILOVER', masterName));
        let after = before;
        await waitUntil(
          async () => (after = await currentMasterPort()) !== before,
          'Sentinel did not promote the replica',
        );
        await waitUntil(
          async () =>
            withClient(before, async (c) => {
              const info = String(await c.info('replication'));
              return info.includes('role:slave') && info.includes(`master_port:${after}`);
            }),
          'Sentinel did not turn the old master into a replica',
        );
        return after;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function withClient<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    connectionName: 'gembatch-testing-topology',
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

async function waitUntil(check: () => Promise<boolean>, message: string): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not answering yet: poll again.
    }
    if (Date.now() > deadline) throw new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', message);
    await delay(POLL_MS);
  }
}
