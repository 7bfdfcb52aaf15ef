import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findFamily, parsePrometheusFamilies, startRedisCluster, type SpawnedRedisCluster } from '@gembatch/testing';
import { startTopologyStack, submitJobs, waitForJobs, type TopologyStack } from './redis-topologies.ts';

const JOBS = 12;

describe('REDIS_URL=redis+cluster://... (a real 3-master Redis Cluster on loopback)', () => {
  let cluster: SpawnedRedisCluster;
  let stack: TopologyStack;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    stack = await startTopologyStack(cluster.url);
  }, 150_000);
  afterAll(async () => {
    await stack?.close();
    await cluster?.close();
  });

  test('jobs run end to end through API, worker and exporter; every key carries the {prefix} hash tag and lives in one slot', async () => {
    const ids = await submitJobs(stack.client, JOBS, 24);
    const views = await waitForJobs(stack.client, ids, 90_000);
    expect(views.map((v) => v.error)).toEqual(views.map(() => null));
    expect(views.every((v) => v.status === 'completed')).toBe(true);
    const result = await stack.client.getResult(ids[0] as string);
    expect(result.usage.generated_tokens).toBeGreaterThan(0);

    const families = parsePrometheusFamilies(await (await fetch(stack.urls.exporter)).text());
    const completed = findFamily(families, 'gembatch_queue_jobs');
    const samples =
      completed && completed.type !== 'histogram' && completed.type !== 'summary' ? completed.metrics : [];
    expect(samples.find((s) => s.labels.queue === 'generate' && s.labels.state === 'completed')?.value).toBe(JOBS);
    expect(findFamily(families, 'gembatch_node_info')?.metrics.length).toBe(1);

    // Every key of the stack, on whichever master holds it: the tagged prefix, one slot, one master.
    const keys = await cluster.keys(`*${stack.prefix}*`);
    expect(keys.length).toBeGreaterThan(JOBS);
    expect(keys.filter((k) => !k.key.startsWith(`{${stack.prefix}}:`))).toEqual([]);
    expect(new Set(keys.map((k) => k.slot)).size).toBe(1);
  });
});
