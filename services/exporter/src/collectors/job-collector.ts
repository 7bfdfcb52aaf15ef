import type { Redis } from 'ioredis';
import { readFleetJobMetrics } from '@gembatch/node-stats';
import { decodeMetricFields, type StoredFamilies } from '@gembatch/telemetry';

/** The fleet-wide job histograms and counters every node adds to (exact sums across nodes, kept across restarts). */
export async function collectJobMetrics(redis: Redis, prefix: string): Promise<StoredFamilies> {
  return decodeMetricFields(Object.entries(await readFleetJobMetrics(redis, prefix)));
}
