import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { startRedisSentinel, type SpawnedRedisSentinel } from '@gembatch/testing';
import { startTopologyStack, submitJobs, waitForJobs, type TopologyStack } from './redis-topologies.ts';

/** Why 120: with 4 sequences on the tiny model 40 jobs could all finish within one 250 ms poll, leaving nothing in flight to fail over under. */
const JOBS = 120;
/**
 * Why 512: at 128 a fast host finished all 120 before the failover (fresh-clone CI, 2026-12-01),
 * and the test then proved nothing about jobs in flight.
 */
const MAX_TOKENS = 512;

describe('REDIS_URL=redis+sentinel://.../master (a master, a replica and a Sentinel on loopback)', () => {
  let sentinel: SpawnedRedisSentinel;
  let stack: TopologyStack;
  beforeAll(async () => {
    sentinel = await startRedisSentinel();
    stack = await startTopologyStack(sentinel.url);
  }, 150_000);
  afterAll(async () => {
    await stack?.close();
    await sentinel?.close();
  });

  test('the master fails over mid-run and every job still completes, on the promoted replica', async () => {
    const ids = await submitJobs(stack.client, JOBS, MAX_TOKENS);
    // Fail over once a job is done and the rest are queued or running.
    await vi.waitFor(
      async () => {
        const { status } = await stack.client.getJob(ids[0] as string);
        if (status !== 'completed' && status !== 'failed') throw new Error(`the first job is ${status}`);
      },
      { timeout: 60_000, interval: 25 },
    );
    const unfinished = (await Promise.all(ids.map((id) => stack.client.getJob(id)))).filter(
      (v) => v.status !== 'completed' && v.status !== 'failed',
    ).length;
    const before = await sentinel.currentMasterPort();
    const after = await sentinel.failover();
    expect(before).toBe(sentinel.master.port);
    expect(after).toBe(sentinel.replica.port);
    expect(unfinished).toBeGreaterThan(0);
    // New work after the failover lands on the new master too.
    ids.push(...(await submitJobs(stack.client, 8, 16)));

    const views = await waitForJobs(stack.client, ids, 120_000);
    expect(views.filter((v) => v.status !== 'completed').map((v) => v.error)).toEqual([]);
    expect(await stack.client.ready()).toBe(true);
    // Why 240 s: the sum of its own bounded waits (60 s + 120 s) plus the failover; the suite's 60 s default cut it on a loaded runner.
  }, 240_000);
});
