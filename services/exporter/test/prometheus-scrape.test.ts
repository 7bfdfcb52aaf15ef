import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { Queue } from 'bullmq';
import { QUEUE_NAMES, type EngineStats } from '@gembatch/contracts';
import { NodeStatsReporter, type NodeIdentity } from '@gembatch/node-stats';
import { closeAfterTest, openTestRedis, redisTest } from '@gembatch/testing';
import { Exporter } from '../src/index.ts';
import { dashboardExpressions } from './dashboard-queries.ts';
import { substituteGrafanaVariables } from './promql-names.ts';
import { startPrometheus } from './prometheus-process.ts';
import { REPO_ROOT, hasCommand } from './repo-paths.ts';

const PROMETHEUS = hasCommand('prometheus');
if (!PROMETHEUS)
  console.warn('prometheus not found: skipping the real-Prometheus scrape test (apt-get install prometheus)');

function identity(node: string): NodeIdentity {
  return {
    node,
    host: 'h',
    gpu: 'cpu',
    accelerator: 'cpu',
    engine: 'node-llama-cpp',
    model: 'm',
    quant: 'F16',
    capabilities: ['text'],
    sequences: 2,
    contextPerSequence: 256,
  };
}

function counters(): EngineStats {
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

describe.skipIf(!PROMETHEUS)('a real Prometheus scraping the exporter', () => {
  redisTest(
    'computes per-node token rates and runs every dashboard query without error',
    async ({ redis }) => {
      const connection = closeAfterTest(openTestRedis(redis.url));
      const engines = { 'node-a': counters(), 'node-b': counters() };
      for (const [node, engine] of Object.entries(engines)) {
        const reporter = closeAfterTest(
          new NodeStatsReporter({
            redis: connection,
            prefix: redis.prefix,
            identity: identity(node),
            engineStats: () => engine,
            intervalMs: 200,
          }),
        );
        await reporter.start();
        reporter.recordJob({
          task: 'summarize',
          outcome: 'completed',
          queueWaitMs: 10,
          durationMs: 100,
          timeToFirstTokenMs: 20,
          interTokenMs: 5,
        });
      }
      const exporter = closeAfterTest(await Exporter.start({ redisUrl: redis.url, prefix: redis.prefix, port: 0 }));
      const prometheus = closeAfterTest(await startPrometheus([new URL(exporter.url).host]));
      // Prometheus must hold a sample of both counters before they grow, or rate() sees no increase.
      await vi.waitFor(async () => expect(await prometheus.query('gembatch_node_info')).toHaveLength(2), {
        timeout: 30_000,
        interval: 200,
      });

      // The engines generate: counters grow on every poll until Prometheus reports both rates.
      const rates = await vi.waitFor(
        async () => {
          engines['node-a'].generationTokensTotal += 40;
          engines['node-b'].generationTokensTotal += 10;
          const series = await prometheus.query('sum by (node) (rate(gembatch_generation_tokens_total[30s]))');
          expect(series).toHaveLength(2);
          for (const s of series) expect(s.value).toBeGreaterThan(0);
          return series;
        },
        { timeout: 30_000, interval: 250 },
      );
      expect(rates.map((s) => s.metric.node).sort()).toEqual(['node-a', 'node-b']);

      // KEDA scales workers on this query (infra/k8s/worker-autoscaling.yaml): it must return the backlog as a number.
      const scaledObject = await readFile(join(REPO_ROOT, 'infra/k8s/worker-autoscaling.yaml'), 'utf8');
      const kedaQuery = /^\s*query:\s*(.+)$/m.exec(scaledObject)?.[1]?.trim() ?? '';
      expect(kedaQuery).toContain('gembatch_queue_jobs');
      const backlog = closeAfterTest(new Queue(QUEUE_NAMES.generate, { connection, prefix: redis.prefix }));
      await backlog.addBulk([1, 2, 3].map((i) => ({ name: `backlog-${i}`, data: {} })));
      await vi.waitFor(
        async () => {
          const series = await prometheus.query(kedaQuery);
          expect(series).toHaveLength(1);
          expect(series[0]?.value).toBe(3);
        },
        { timeout: 30_000, interval: 250 },
      );

      const dashboard = JSON.parse(
        await readFile(join(REPO_ROOT, 'infra/grafana/dashboards/gembatch-fleet.json'), 'utf8'),
      ) as unknown;
      const failures: string[] = [];
      for (const { where, expr } of dashboardExpressions(dashboard)) {
        await prometheus
          .query(substituteGrafanaVariables(expr))
          .catch((error: unknown) => failures.push(`${where}: ${String(error)}`));
      }
      expect(failures).toEqual([]);
    },
    120_000,
  );
});
