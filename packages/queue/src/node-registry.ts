import type { Redis } from 'ioredis';
import { NODE_STATS_TTL_SECONDS, NodeStats, redisKeys } from '@gembatch/contracts';

/**
 * The registry of live worker nodes: each node keeps a hash of its stats alive with a TTL and a
 * heartbeat score in a sorted set. A node that stops heartbeating drops out after the TTL.
 */

/** Writes a node's stats and refreshes its TTL and heartbeat, in one round trip. */
export async function writeNodeHeartbeat(redis: Redis, prefix: string, stats: NodeStats): Promise<void> {
  const key = redisKeys.node(prefix, stats.node);
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(stats)) fields[name] = String(value);
  await redis
    .multi()
    .hset(key, fields)
    .expire(key, NODE_STATS_TTL_SECONDS)
    .zadd(redisKeys.nodes(prefix), stats.heartbeat_at, stats.node)
    .exec();
}

/** Removes a node at once (graceful shutdown), so its series disappear without waiting for the TTL. */
export async function removeNode(redis: Redis, prefix: string, nodeId: string): Promise<void> {
  await redis.multi().del(redisKeys.node(prefix, nodeId), redisKeys.nodeHistograms(prefix, nodeId)).zrem(redisKeys.nodes(prefix), nodeId).exec();
}

/** Every node whose stats are still alive; prunes ids whose hash has expired. */
export async function listLiveNodes(redis: Redis, prefix: string): Promise<NodeStats[]> {
  const ids = await redis.zrange(redisKeys.nodes(prefix), 0, -1);
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hgetall(redisKeys.node(prefix, id));
  const replies = (await pipeline.exec()) ?? [];
  const live: NodeStats[] = [];
  const dead: string[] = [];
  replies.forEach(([error, hash], index) => {
    const parsed = !error && hash && Object.keys(hash).length > 0 ? NodeStats.safeParse(hash) : undefined;
    if (parsed?.success) live.push(parsed.data);
    else dead.push(ids[index] as string);
  });
  if (dead.length > 0) await redis.zrem(redisKeys.nodes(prefix), ...dead);
  return live;
}
