import type { Redis } from 'ioredis';
import { NODE_STATS_TTL_SECONDS, NodeStats, encodeNodeStats, redisKeys } from '@gembatch/contracts';

/**
 * The registry of live worker nodes: each node keeps a hash of its stats alive with a TTL and a
 * heartbeat score in a sorted set. A node that stops heartbeating drops out after the TTL.
 */

/**
 * Writes a node's stats and refreshes its TTL and heartbeat, in one round trip. `histogramFields`
 * (absolute bucket counts in the `encodeMetricField` layout, e.g. tokens per decode) go to the
 * node's histogram hash with the same TTL.
 */
export async function writeNodeHeartbeat(
  redis: Redis,
  prefix: string,
  stats: NodeStats,
  histogramFields?: ReadonlyMap<string, number>,
): Promise<void> {
  const key = redisKeys.node(prefix, stats.node);
  const transaction = redis.multi().hset(key, encodeNodeStats(stats)).expire(key, NODE_STATS_TTL_SECONDS);
  if (histogramFields && histogramFields.size > 0) {
    const histKey = redisKeys.nodeHistograms(prefix, stats.node);
    transaction
      .hset(histKey, Object.fromEntries([...histogramFields].map(([field, value]) => [field, String(value)])))
      .expire(histKey, NODE_STATS_TTL_SECONDS);
  }
  await transaction.zadd(redisKeys.nodes(prefix), stats.heartbeat_at, stats.node).exec();
}

/** The histogram hashes of `nodeIds` (field → value), in one round trip; an expired node maps to `{}`. */
export async function readNodeHistogramFields(
  redis: Redis,
  prefix: string,
  nodeIds: readonly string[],
): Promise<Map<string, Record<string, string>>> {
  const result = new Map<string, Record<string, string>>();
  if (nodeIds.length === 0) return result;
  const pipeline = redis.pipeline();
  for (const id of nodeIds) pipeline.hgetall(redisKeys.nodeHistograms(prefix, id));
  const replies = (await pipeline.exec()) ?? [];
  nodeIds.forEach((id, index) => {
    const [error, hash] = replies[index] ?? [null, {}];
    if (error) throw error;
    result.set(id, (hash ?? {}) as Record<string, string>);
  });
  return result;
}

/**
 * Adds job metric increments (field → amount, `encodeMetricField` layout) to the fleet-wide hash
 * in one transaction: every node adds to the same fields, so the sums are exact across nodes.
 * `…|sum` fields are floats (HINCRBYFLOAT), the others integer counts (HINCRBY). Rejects when the
 * transaction did not run (then nothing was added); resolves with the fields Redis refused
 * (e.g. a field holding a non-number), whose increments are lost and should not be retried.
 */
export async function incrementFleetJobMetrics(
  redis: Redis,
  prefix: string,
  increments: ReadonlyMap<string, number>,
): Promise<string[]> {
  if (increments.size === 0) return [];
  const key = redisKeys.fleetJobMetrics(prefix);
  const fields = [...increments.keys()];
  const transaction = redis.multi();
  for (const [field, by] of increments) {
    if (field.endsWith('|sum') || !Number.isInteger(by)) transaction.hincrbyfloat(key, field, by);
    else transaction.hincrby(key, field, by);
  }
  const replies = await transaction.exec();
  if (!replies) throw new Error('the job metrics transaction was aborted');
  return fields.filter((_, index) => replies[index]?.[0]);
}

/** The fleet-wide job metrics hash (field → value). */
export async function readFleetJobMetrics(redis: Redis, prefix: string): Promise<Record<string, string>> {
  return redis.hgetall(redisKeys.fleetJobMetrics(prefix));
}

/** Removes a node at once (graceful shutdown), so its series disappear without waiting for the TTL. */
export async function removeNode(redis: Redis, prefix: string, nodeId: string): Promise<void> {
  await redis
    .multi()
    .del(redisKeys.node(prefix, nodeId), redisKeys.nodeHistograms(prefix, nodeId))
    .zrem(redisKeys.nodes(prefix), nodeId)
    .exec();
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
