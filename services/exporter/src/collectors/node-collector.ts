import type { Redis } from 'ioredis';
import { listLiveNodes, readNodeHistogramFields } from '@gembatch/node-stats';
import { NODE_FAMILIES, decodeMetricFields, histogramSamples, type NodeMetricsInput } from '@gembatch/telemetry';

/**
 * Every live node's stats and decode-batch histogram, from the heartbeat hashes the nodes keep
 * alive with a TTL: a node that stopped (or expired) is simply not in the result.
 */
export async function collectNodes(redis: Redis, prefix: string): Promise<NodeMetricsInput[]> {
  const nodes = await listLiveNodes(redis, prefix);
  const histograms = await readNodeHistogramFields(
    redis,
    prefix,
    nodes.map((stats) => stats.node),
  );
  return nodes
    .sort((a, b) => a.node.localeCompare(b.node))
    .map((stats) => {
      const [decodeBatchTokens] = histogramSamples(
        NODE_FAMILIES.decodeBatchTokens,
        decodeMetricFields(Object.entries(histograms.get(stats.node) ?? {})),
        { node: stats.node },
      );
      return { stats, decodeBatchTokens };
    });
}
