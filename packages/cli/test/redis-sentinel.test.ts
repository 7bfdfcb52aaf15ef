import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { startRedisSentinel, type SpawnedRedisSentinel } from '@gembatch/testing';
import { startTopologyStack, submitJobs, waitForJobs, type TopologyStack } from './redis-topologies.ts';

/** Why 120: with 4 sequences on the tiny model 40 jobs could all finish within one 250 ms poll, leaving nothing in flight to fail over under. */
const JOBS = 120;
/** Tokens per job: enough that the rest are still queued or running when the first is done. */
const MAX_TOKENS = 256;

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
    // The first job alone, then the rest, so that the job watched is the first one enqueued (submitted
    // together, any of them may be).
    const ids = [
      ...(await submitJobs(stack.client, 1, MAX_TOKENS)),
      ...(await submitJobs(stack.client, JOBS - 1, MAX_TOKENS)),
    ];
    // Fail over once the first job is done and the rest are queued or running.
    await vi.waitFor(
      async () => {
        const { status } = await stack.client.getJob(ids[0] as string);
        if (status !== 'completed' && status !== 'failed') throw new Error(`the first job is ${status}`);
      },
      { timeout: 60_000, interval: 25 },
    );
    // And more just before the failover: queued work is in flight however fast the host ran the rest.
    ids.push(...(await submitJobs(stack.client, 40, MAX_TOKENS)));
    const atFailover = await Promise.all(ids.map((id) => stack.client.getJob(id)));
    const unfinished = atFailover.filter((v) => v.status !== 'completed' && v.status !== 'failed').length;
    const tally = JSON.stringify(
      Object.fromEntries(
        ['queued', 'extracting', 'running', 'completed', 'failed', 'cancelled'].map((s) => [
          s,
          atFailover.filter((v) => v.status === s).length,
        ]),
      ),
    );
    const firstError = atFailover.find((v) => v.error)?.error;
    const before = await sentinel.currentMasterPort();
    const after = await sentinel.failover();
    expect(before).toBe(sentinel.master.port);
    expect(after).toBe(sentinel.replica.port);
    expect(unfinished, `jobs at the failover: ${tally}; first error: ${JSON.stringify(firstError)}`).toBeGreaterThan(0);
    // New work after the failover lands on the new master too.
    ids.push(...(await submitJobs(stack.client, 8, 16)));

    const views = await waitForJobs(stack.client, ids, 120_000);
    expect(views.filter((v) => v.status !== 'completed').map((v) => v.error)).toEqual([]);
    expect(await stack.client.ready()).toBe(true);
    // Why 240 s: the sum of its own bounded waits (60 s + 120 s) plus the failover; the suite's 60 s default cut it on a loaded runner.
  }, 240_000);
});
