import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, loadEnv } from '@gembatch/config';
import {
  newJobId,
  NODE_STATS_TTL_SECONDS,
  QUEUE_NAMES,
  redisKeys,
  type NodeStats,
  type EngineStats,
} from '@gembatch/contracts';
import { JobAdmission, JobProducer } from '@gembatch/queue';
import { NodeStatsReporter, writeNodeHeartbeat, type NodeIdentity } from '@gembatch/node-stats';
import { selectSamples } from '@gembatch/telemetry';
import { closeAfterTest, findFreePort, openTestRedis, redisTest } from '@gembatch/testing';
import { Exporter, ExporterEnv, FleetMetrics } from '../src/index.ts';
import { scrape, valuesBy } from './scrape.ts';

function engine(generated: number, prompt: number): EngineStats {
  return {
    activeSequences: 1,
    promptTokensTotal: prompt,
    generationTokensTotal: generated,
    decodeCallsTotal: 4,
    decodeTokensTotal: prompt + generated,
    fullDecodeCallsTotal: 0,
    decodeBatchTokens: new Map([
      [1, 3],
      [16, 1],
    ]),
    vramTotalBytes: 24e9,
    vramUsedBytes: 9e9,
  };
}

function identity(node: string, quant: string): NodeIdentity {
  return {
    node,
    host: 'h',
    gpu: 'NVIDIA RTX 4090',
    accelerator: 'cuda',
    engine: 'node-llama-cpp',
    model: 'gemma-4-12b',
    quant,
    capabilities: ['text', 'image'],
    sequences: 8,
    contextPerSequence: 8192,
  };
}

describe('fleet exporter', () => {
  redisTest(
    'serves every live node, the merged job histograms and the queue counts; a removed or expired node disappears',
    async ({ redis }) => {
      const connection = closeAfterTest(openTestRedis(redis.url));
      const a = closeAfterTest(
        new NodeStatsReporter({
          redis: connection,
          prefix: redis.prefix,
          identity: identity('gpu-a', 'Q4_K_M'),
          engineStats: () => engine(120, 900),
        }),
      );
      const b = closeAfterTest(
        new NodeStatsReporter({
          redis: connection,
          prefix: redis.prefix,
          identity: identity('gpu-b', 'Q8_0'),
          engineStats: () => engine(80, 300),
        }),
      );
      await Promise.all([a.start(), b.start()]);
      a.recordJob({
        task: 'summarize',
        outcome: 'completed',
        queueWaitMs: 100,
        durationMs: 3_000,
        timeToFirstTokenMs: 400,
        interTokenMs: 20,
      });
      b.recordJob({
        task: 'summarize',
        outcome: 'completed',
        queueWaitMs: 200,
        durationMs: 1_000,
        timeToFirstTokenMs: 150,
        interTokenMs: 25,
      });
      b.recordJob({
        task: 'extract',
        outcome: 'failed',
        errorCode: 'GB_ERR_SCHEMA_VALIDATION',
        queueWaitMs: 10,
        durationMs: 500,
        timeToFirstTokenMs: 100,
        interTokenMs: 30,
      });
      const queue = closeAfterTest(new Queue('generate', { connection, prefix: redis.prefix }));
      await queue.add('job', { n: 1 });
      await queue.add('job', { n: 2 }, { delay: 60_000 });
      await queue.add('job', { n: 3 }, { priority: 5 });
      // Plain jobs waiting for a fair-share slot (a window of 0: none is admitted) are in no queue.
      const admission = new JobAdmission({
        producer: closeAfterTest(new JobProducer({ connection, prefix: redis.prefix })),
        window: 0,
      });
      for (const tenant of ['acme', 'acme', 'globex']) {
        await admission.submit(
          {
            job_id: newJobId(),
            tenant,
            task: 'summarize',
            options: {},
            max_tokens: 8,
            submitted_at: Date.now(),
            input: { type: 'text', sha256: 'a'.repeat(64) },
          },
          QUEUE_NAMES.generate,
        );
      }

      const exporter = closeAfterTest(await Exporter.start({ redisUrl: redis.url, prefix: redis.prefix, port: 0 }));
      // Job counts reach Redis asynchronously; wait for all three.
      await vi.waitFor(
        async () =>
          expect(
            selectSamples((await scrape(exporter.url)).parsed, 'gembatch_job_duration_seconds_count').reduce(
              (n, s) => n + s.value,
              0,
            ),
          ).toBe(3),
        { timeout: 10_000, interval: 50 },
      );
      const first = await scrape(exporter.url);
      expect(first.status).toBe(200);

      expect(valuesBy(first, 'gembatch_generation_tokens_total', 'node')).toEqual(
        new Map([
          ['gpu-a', 120],
          ['gpu-b', 80],
        ]),
      );
      expect(valuesBy(first, 'gembatch_prompt_tokens_total', 'node')).toEqual(
        new Map([
          ['gpu-a', 900],
          ['gpu-b', 300],
        ]),
      );
      expect(valuesBy(first, 'gembatch_node_sequences', 'node')).toEqual(
        new Map([
          ['gpu-a', 8],
          ['gpu-b', 8],
        ]),
      );
      expect(selectSamples(first.parsed, 'gembatch_live_nodes')[0]?.value).toBe(2);
      expect(selectSamples(first.parsed, 'gembatch_exporter_redis_up')[0]?.value).toBe(1);
      // The exporter's own event-loop lag beside the fleet's families.
      expect(selectSamples(first.parsed, 'gembatch_event_loop_lag_seconds_count')[0]?.value).toBeGreaterThanOrEqual(0);
      expect(selectSamples(first.parsed, 'gembatch_generation_tokens_total', { node: 'gpu-b' })[0]?.labels).toEqual({
        node: 'gpu-b',
        model: 'gemma-4-12b',
        quant: 'Q8_0',
      });
      expect(selectSamples(first.parsed, 'gembatch_node_info', { node: 'gpu-a' })[0]?.labels).toEqual({
        node: 'gpu-a',
        gpu: 'NVIDIA RTX 4090',
        accelerator: 'cuda',
        model: 'gemma-4-12b',
        quant: 'Q4_K_M',
        engine: 'node-llama-cpp',
        capabilities: 'text,image',
      });
      expect(
        selectSamples(first.parsed, 'gembatch_node_memory_bytes', { node: 'gpu-a', kind: 'vram_used' })[0]?.value,
      ).toBe(9e9);
      expect(
        selectSamples(first.parsed, 'gembatch_node_decode_batch_tokens_bucket', { node: 'gpu-a', le: '16' })[0]?.value,
      ).toBe(4);
      expect(selectSamples(first.parsed, 'gembatch_node_decode_batch_tokens_count', { node: 'gpu-a' })[0]?.value).toBe(
        4,
      );

      // Job histograms: one series per task, summed across both nodes.
      const ttftBuckets = selectSamples(first.parsed, 'gembatch_time_to_first_token_seconds_bucket', {
        task: 'summarize',
      });
      expect(ttftBuckets.find((s) => s.labels.le === '0.25')?.value).toBe(1);
      expect(ttftBuckets.find((s) => s.labels.le === '0.5')?.value).toBe(2);
      expect(ttftBuckets.find((s) => s.labels.le === '+Inf')?.value).toBe(2);
      expect(
        selectSamples(first.parsed, 'gembatch_jobs_total')
          .map((s) => [s.labels.task, s.labels.outcome, s.value])
          .sort(),
      ).toEqual([
        ['extract', 'failed', 1],
        ['summarize', 'completed', 2],
      ]);
      expect(valuesBy(first, 'gembatch_errors_total', 'code')).toEqual(new Map([['GB_ERR_SCHEMA_VALIDATION', 1]]));

      const generate = (state: string) =>
        selectSamples(first.parsed, 'gembatch_queue_jobs', { queue: 'generate', state })[0]?.value;
      expect([
        generate('waiting'),
        generate('delayed'),
        generate('prioritized'),
        generate('active'),
        generate('failed'),
      ]).toEqual([1, 1, 1, 0, 0]);
      expect(selectSamples(first.parsed, 'gembatch_queue_jobs', { queue: 'extract' })).toHaveLength(7);
      expect(selectSamples(first.parsed, 'gembatch_admission_pending_jobs')[0]?.value).toBe(3);

      // A node that shuts down is gone from the very next scrape.
      await b.close();
      const second = await scrape(exporter.url);
      expect([...valuesBy(second, 'gembatch_node_generation_tokens_per_second', 'node').keys()]).toEqual(['gpu-a']);
      expect(selectSamples(second.parsed, 'gembatch_node_decode_batch_tokens_count').map((s) => s.labels.node)).toEqual(
        ['gpu-a'],
      );
      // Job histograms outlive the node that observed them.
      expect(selectSamples(second.parsed, 'gembatch_jobs_total', { task: 'summarize' })[0]?.value).toBe(2);

      // A node that dies without closing is gone once its hash expires (shortened here from the TTL).
      await a.close();
      await writeNodeHeartbeat(connection, redis.prefix, statsOf('gpu-dead'));
      expect(await connection.ttl(redisKeys.node(redis.prefix, 'gpu-dead'))).toBeLessThanOrEqual(
        NODE_STATS_TTL_SECONDS,
      );
      expect([...valuesBy(await scrape(exporter.url), 'gembatch_node_info', 'node').keys()]).toEqual(['gpu-dead']);
      await connection.pexpire(redisKeys.node(redis.prefix, 'gpu-dead'), 1);
      await vi.waitFor(
        async () => expect(valuesBy(await scrape(exporter.url), 'gembatch_node_info', 'node').size).toBe(0),
        { timeout: 5_000, interval: 20 },
      );
      expect(selectSamples((await scrape(exporter.url)).parsed, 'gembatch_live_nodes')[0]?.value).toBe(0);
    },
  );

  redisTest('a restarted exporter serves the same job totals (they live in Redis)', async ({ redis }) => {
    const connection = closeAfterTest(openTestRedis(redis.url));
    const reporter = closeAfterTest(
      new NodeStatsReporter({
        redis: connection,
        prefix: redis.prefix,
        identity: identity('gpu-r', 'Q4_K_M'),
        engineStats: () => engine(5, 5),
      }),
    );
    await reporter.start();
    for (let i = 0; i < 5; i++)
      reporter.recordJob({
        task: 'classify',
        outcome: 'completed',
        queueWaitMs: i,
        durationMs: 10 * i,
        timeToFirstTokenMs: i,
        interTokenMs: null,
      });
    await reporter.close();
    const first = await Exporter.start({ redisUrl: redis.url, prefix: redis.prefix, port: 0 });
    const before = selectSamples((await scrape(first.url)).parsed, 'gembatch_job_queue_wait_seconds_bucket', {
      task: 'classify',
    });
    await first.close();
    const second = closeAfterTest(await Exporter.start({ redisUrl: redis.url, prefix: redis.prefix, port: 0 }));
    const after = selectSamples((await scrape(second.url)).parsed, 'gembatch_job_queue_wait_seconds_bucket', {
      task: 'classify',
    });
    expect(after).toEqual(before);
    expect(after.find((s) => s.labels.le === '+Inf')?.value).toBe(5);
  });
});

/** Stats as a node writes them, for a node that then dies without a goodbye. */
function statsOf(node: string): NodeStats {
  return {
    node,
    host: 'h',
    gpu: 'cpu',
    accelerator: 'cpu',
    engine: 'node-llama-cpp',
    model: 'm',
    quant: 'F16',
    capabilities: ['text'],
    started_at: Date.now(),
    heartbeat_at: Date.now(),
    sequences: 1,
    active_sequences: 0,
    context_per_sequence: 256,
    generation_tokens_per_second: 0,
    prompt_tokens_per_second: 0,
    generation_tokens_total: 0,
    prompt_tokens_total: 0,
    decode_calls_total: 0,
    vram_total_bytes: 0,
    vram_used_bytes: 0,
    ram_used_bytes: 1,
  };
}

describe('fleet exporter without Redis', () => {
  it('answers 200 with gembatch_exporter_redis_up 0 and no fleet series', async () => {
    const port = await findFreePort('127.0.0.1');
    const redis = new Redis(`redis://127.0.0.1:${port}`, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => 200,
      lazyConnect: true,
    });
    redis.on('error', () => undefined);
    const metrics = new FleetMetrics({ redis, prefix: 'gembatch-none', readTimeoutMs: 500 });
    try {
      const text = await metrics.registry.metrics();
      expect(text).toContain('gembatch_exporter_redis_up 0');
      expect(text).not.toMatch(/^gembatch_live_nodes /m);
      expect(text).not.toMatch(/^gembatch_queue_jobs\{/m);
    } finally {
      await metrics.close();
      redis.disconnect();
    }
  });
});

describe('ExporterEnv', () => {
  it('has defaults for everything and names a bad variable', () => {
    expect(loadEnv(ExporterEnv, {})).toMatchObject({
      REDIS_URL: 'redis://127.0.0.1:6379',
      GEMBATCH_REDIS_PREFIX: 'gembatch',
      GEMBATCH_EXPORTER_PORT: 9464,
      GEMBATCH_EXPORTER_HOST: '127.0.0.1',
    });
    expect(() => loadEnv(ExporterEnv, { GEMBATCH_EXPORTER_PORT: 'ninety' })).toThrow(ConfigError);
    expect(() => loadEnv(ExporterEnv, { GEMBATCH_EXPORTER_PORT: '70000' })).toThrow(/GEMBATCH_EXPORTER_PORT/);
  });
});
