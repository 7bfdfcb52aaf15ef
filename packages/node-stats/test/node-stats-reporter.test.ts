import { describe, expect, vi } from 'vitest';
import { GembatchError, NODE_STATS_TTL_SECONDS, redisKeys, type EngineStats } from '@gembatch/contracts';
import {
  JOB_HISTOGRAMS,
  JOB_COUNTERS,
  NODE_FAMILIES,
  counterSamples,
  createLogger,
  decodeMetricFields,
  histogramSamples,
  parsePrometheusText,
  selectSamples,
} from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, redisTest } from '@gembatch/testing';
import {
  NodeStatsReporter,
  defaultNodeId,
  listLiveNodes,
  readFleetJobMetrics,
  readNodeHistogramFields,
  type NodeIdentity,
} from '../src/index.ts';

/** Engine counters a test drives by hand (the reporter only reads numbers from the engine). */
function counters(): EngineStats & { decodeBatchTokens: Map<number, number> } {
  return {
    activeSequences: 0,
    promptTokensTotal: 0,
    generationTokensTotal: 0,
    decodeCallsTotal: 0,
    decodeTokensTotal: 0,
    fullDecodeCallsTotal: 0,
    decodeBatchTokens: new Map(),
    vramTotalBytes: 0,
    vramUsedBytes: 0,
  };
}

function identity(node: string): NodeIdentity {
  return {
    node,
    host: 'test-host',
    gpu: 'cpu',
    accelerator: 'cpu',
    engine: 'node-llama-cpp',
    model: 'tiny-gemma4u',
    quant: 'F16',
    capabilities: ['text'],
    sequences: 2,
    contextPerSequence: 512,
  };
}

describe('NodeStatsReporter', () => {
  redisTest('publishes the node before start() resolves, with totals from the engine counters', async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url));
    const engine = counters();
    engine.generationTokensTotal = 42;
    engine.promptTokensTotal = 100;
    engine.activeSequences = 1;
    engine.decodeCallsTotal = 3;
    engine.decodeTokensTotal = 102;
    engine.decodeBatchTokens.set(1, 2).set(100, 1);
    engine.stepTimeMsTotal = { decode: 1500, sampling: 250.4, scheduling: 40 };
    const reporter = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('node-a'),
        engineStats: () => engine,
      }),
    );
    await reporter.start();

    const [node, ...others] = await listLiveNodes(connection, redis.prefix);
    expect(others).toEqual([]);
    expect(node).toMatchObject({
      node: 'node-a',
      model: 'tiny-gemma4u',
      quant: 'F16',
      capabilities: ['text'],
      sequences: 2,
      active_sequences: 1,
      context_per_sequence: 512,
      generation_tokens_total: 42,
      prompt_tokens_total: 100,
      decode_calls_total: 3,
      step_decode_seconds_total: 1.5,
      step_sampling_seconds_total: 0.25,
      step_scheduling_seconds_total: 0.04,
    });
    expect(node?.ram_used_bytes).toBeGreaterThan(0);
    expect(node?.ram_total_bytes).toBeGreaterThan(node?.ram_used_bytes ?? 0);
    const ttl = await connection.ttl(redisKeys.node(redis.prefix, 'node-a'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(NODE_STATS_TTL_SECONDS);

    const fields = (await readNodeHistogramFields(connection, redis.prefix, ['node-a'])).get('node-a') ?? {};
    const [decode] = histogramSamples(NODE_FAMILIES.decodeBatchTokens, decodeMetricFields(Object.entries(fields)), {
      node: 'node-a',
    });
    expect(decode?.labels).toEqual({ node: 'node-a' });
    expect(decode?.count).toBe(3);
    expect(decode?.sum).toBe(102);
    // Engine bucket 100 lands in the catalog's 128 bucket (the smallest power of two ≥ 100).
    expect(decode?.buckets.find((b) => b.le === 1)?.count).toBe(2);
    expect(decode?.buckets.find((b) => b.le === 64)?.count).toBe(2);
    expect(decode?.buckets.find((b) => b.le === 128)?.count).toBe(3);
  });

  redisTest('tok/s follows the engine counters between heartbeats', async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url));
    const engine = counters();
    const reporter = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('node-rate'),
        engineStats: () => engine,
        intervalMs: 100,
      }),
    );
    await reporter.start();
    expect((await listLiveNodes(connection, redis.prefix))[0]?.generation_tokens_per_second).toBe(0);
    engine.generationTokensTotal = 500;
    engine.promptTokensTotal = 1_000;
    await vi.waitFor(
      async () => {
        const [node] = await listLiveNodes(connection, redis.prefix);
        expect(node?.generation_tokens_total).toBe(500);
        expect(node?.generation_tokens_per_second).toBeGreaterThan(0);
        expect(node?.prompt_tokens_per_second).toBeGreaterThan(node?.generation_tokens_per_second ?? 0);
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  redisTest('job observations from two nodes merge exactly in the fleet hash', async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url));
    const a = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('node-a'),
        engineStats: counters,
      }),
    );
    const b = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('node-b'),
        engineStats: counters,
      }),
    );
    await Promise.all([a.start(), b.start()]);
    a.recordJob({
      task: 'summarize',
      outcome: 'completed',
      queueWaitMs: 50,
      durationMs: 1_500,
      timeToFirstTokenMs: 200,
      interTokenMs: 30,
    });
    b.recordJob({
      task: 'summarize',
      outcome: 'completed',
      queueWaitMs: 5_000,
      durationMs: 700,
      timeToFirstTokenMs: 90,
      interTokenMs: 12,
    });
    b.recordJob({
      task: 'classify',
      outcome: 'failed',
      errorCode: 'GB_ERR_PDF_INVALID',
      queueWaitMs: 10,
      durationMs: 20,
      timeToFirstTokenMs: null,
      interTokenMs: null,
    });
    a.recordJob({
      task: 'no-such-task',
      outcome: 'failed',
      errorCode: 'not a code',
      queueWaitMs: -5,
      durationMs: Number.NaN,
      timeToFirstTokenMs: null,
      interTokenMs: null,
    });
    // close() sends what is pending before it resolves.
    await Promise.all([a.close(), b.close()]);

    const families = decodeMetricFields(Object.entries(await readFleetJobMetrics(connection, redis.prefix)));
    const ttft = histogramSamples(JOB_HISTOGRAMS.timeToFirstToken, families);
    expect(ttft).toHaveLength(1);
    expect(ttft[0]?.labels).toEqual({ task: 'summarize' });
    expect(ttft[0]?.count).toBe(2);
    expect(ttft[0]?.sum).toBeCloseTo(0.29);
    expect(ttft[0]?.buckets.find((b) => b.le === 0.1)?.count).toBe(1);
    expect(ttft[0]?.buckets.find((b) => b.le === 0.25)?.count).toBe(2);
    const wait = histogramSamples(JOB_HISTOGRAMS.queueWait, families);
    expect(wait.find((s) => s.labels.task === 'summarize')?.buckets.find((b) => b.le === 5)?.count).toBe(2);
    // A negative wait (clock skew) is not observed; a NaN duration is not observed.
    expect(wait.find((s) => s.labels.task === 'unknown')).toBeUndefined();
    expect(
      histogramSamples(JOB_HISTOGRAMS.jobDuration, families).find((s) => s.labels.task === 'unknown'),
    ).toBeUndefined();
    const jobs = counterSamples(JOB_COUNTERS.jobs, families).map((s) => [s.labels.task, s.labels.outcome, s.value]);
    expect(jobs.sort()).toEqual([
      ['classify', 'failed', 1],
      ['summarize', 'completed', 2],
      ['unknown', 'failed', 1],
    ]);
    const errors = counterSamples(JOB_COUNTERS.errors, families).map((s) => [s.labels.code, s.value]);
    expect(errors.sort()).toEqual([
      ['GB_ERR_INTERNAL', 1],
      ['GB_ERR_PDF_INVALID', 1],
    ]);
  });

  redisTest("its registry serves this node alone, with the exporter's names and labels", async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url));
    const engine = counters();
    engine.generationTokensTotal = 7;
    const reporter = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('node-own'),
        engineStats: () => engine,
      }),
    );
    await reporter.start();
    reporter.recordJob({
      task: 'prompt',
      outcome: 'completed',
      queueWaitMs: 1,
      durationMs: 2,
      timeToFirstTokenMs: 3,
      interTokenMs: 4,
    });
    engine.generationTokensTotal = 9;
    const parsed = parsePrometheusText(await reporter.registry.metrics());
    expect(parsed.errors).toEqual([]);
    expect(selectSamples(parsed, 'gembatch_generation_tokens_total')).toEqual([
      {
        name: 'gembatch_generation_tokens_total',
        labels: { node: 'node-own', model: 'tiny-gemma4u', quant: 'F16' },
        value: 9,
      },
    ]);
    expect(selectSamples(parsed, 'gembatch_node_info')[0]?.labels).toEqual({
      node: 'node-own',
      gpu: 'cpu',
      accelerator: 'cpu',
      model: 'tiny-gemma4u',
      quant: 'F16',
      engine: 'node-llama-cpp',
      capabilities: 'text',
    });
    expect(selectSamples(parsed, 'gembatch_jobs_total', { task: 'prompt', outcome: 'completed' })[0]?.value).toBe(1);
    expect(selectSamples(parsed, 'gembatch_inter_token_latency_seconds_count', { task: 'prompt' })[0]?.value).toBe(1);
    expect(
      selectSamples(parsed, 'gembatch_node_memory_bytes')
        .map((s) => s.labels.kind)
        .sort(),
    ).toEqual(['ram_total', 'ram_used', 'vram_total', 'vram_used']);
  });

  redisTest(
    'close() removes the node at once and is idempotent; start() after close() is refused',
    async ({ redis }) => {
      const connection = closeAfterTest(openTestRedis(redis.url));
      const reporter = new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('node-gone'),
        engineStats: counters,
        intervalMs: 100,
      });
      await reporter.start();
      expect(await listLiveNodes(connection, redis.prefix)).toHaveLength(1);
      await reporter.close();
      await reporter.close();
      expect(await listLiveNodes(connection, redis.prefix)).toEqual([]);
      expect(
        await connection.exists(
          redisKeys.node(redis.prefix, 'node-gone'),
          redisKeys.nodeHistograms(redis.prefix, 'node-gone'),
        ),
      ).toBe(0);
      await expect(reporter.start()).rejects.toMatchObject({ code: 'GB_ERR_CONFLICT' });
    },
  );

  redisTest('keeps heartbeating with the last engine numbers when the engine refuses', async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url));
    const engine = counters();
    engine.generationTokensTotal = 11;
    let closed = false;
    const reporter = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('node-closing'),
        engineStats: () => {
          if (closed) throw new Error('engine closed');
          return engine;
        },
        intervalMs: 100,
      }),
    );
    await reporter.start();
    closed = true;
    const before = (await listLiveNodes(connection, redis.prefix))[0]?.heartbeat_at ?? 0;
    await vi.waitFor(
      async () => {
        const [node] = await listLiveNodes(connection, redis.prefix);
        expect(node?.heartbeat_at).toBeGreaterThan(before);
        expect(node?.generation_tokens_total).toBe(11);
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  redisTest('refuses an identity that would make a bad label or key', async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url));
    const make = (node: string) =>
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity(node),
        engineStats: counters,
      });
    expect(() => make('has space')).toThrow(GembatchError);
    expect(() => make('x'.repeat(129))).toThrow(/node id/);
    expect(
      () =>
        new NodeStatsReporter({
          redis: connection,
          prefix: redis.prefix,
          identity: { ...identity('ok'), sequences: 0 },
          engineStats: counters,
        }),
    ).toThrow(/sequences/);
  });
});

describe('defaultNodeId', () => {
  redisTest('is GEMBATCH_NODE_ID when set, else <host>-gpu<i> or <host>-cpu', () => {
    expect(defaultNodeId(0, { GEMBATCH_NODE_ID: 'worker-7' })).toBe('worker-7');
    expect(defaultNodeId(1, {})).toMatch(/^[A-Za-z0-9._-]+-gpu1$/);
    expect(defaultNodeId(undefined, { GEMBATCH_NODE_ID: ' ' })).toMatch(/^[A-Za-z0-9._-]+-cpu$/);
  });
});

describe('NodeStatsReporter with a duplicate node id', () => {
  redisTest('warns when another live process already publishes under the same id', async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url));
    const warnings: string[] = [];
    const logger = createLogger({
      service: 'test',
      level: 'warn',
      destination: { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) },
    });
    const first = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('same-id'),
        engineStats: counters,
      }),
    );
    const firstCreated = Date.now();
    await first.start();
    // Another process starts later: let the clock pass the first one's start time.
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(firstCreated));
    const second = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('same-id'),
        engineStats: counters,
        logger,
      }),
    );
    await second.start();
    expect(warnings).toEqual([
      'another live process publishes stats under this node id; give each worker its own GEMBATCH_NODE_ID',
    ]);
  });
});
