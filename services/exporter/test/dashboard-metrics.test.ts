import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { describe, expect, onTestFinished, vi } from 'vitest';
import { NodeStatsReporter } from '@gembatch/node-stats';
import type { EngineStats } from '@gembatch/contracts';
import {
  closeAfterTest,
  findFreePort,
  openTestRedis,
  redisTest,
  tempDir,
  type RedisTestContext,
} from '@gembatch/testing';
import { Exporter } from '../src/index.ts';
import { dashboardExpressions } from './dashboard-queries.ts';
import { promqlMetricNames } from './promql-names.ts';
import { REPO_ROOT } from './repo-paths.ts';
import { scrape } from './scrape.ts';

/** Series Prometheus adds itself (not served by the exporter). */
const PROMETHEUS_OWN = new Set(['up']);

/**
 * Starts the real API process (its HTTP metrics are the dashboard's API row), answers one request
 * so its per-route series exist, and returns the sample names of its `/metrics`.
 */
async function apiMetricNames(redis: RedisTestContext): Promise<Set<string>> {
  const data = await tempDir('gembatch-api-metrics-');
  onTestFinished(() => data.cleanup());
  const port = await findFreePort('127.0.0.1');
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'services/api/src/server.ts')], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL: redis.url,
      GEMBATCH_REDIS_PREFIX: redis.prefix,
      GEMBATCH_API_PORT: String(port),
      GEMBATCH_DATA_DIR: data.path,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = once(child, 'exit');
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString('utf8')).slice(-4_000)));
  // Registered after the Redis fixture: the API's connections close before its leak check.
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const base = `http://127.0.0.1:${port}`;
  await vi.waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}: ${log}`);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    },
    { timeout: 60_000, interval: 100 },
  );
  expect((await fetch(`${base}/no-such-route`)).status).toBe(404);
  return new Set((await scrape(`${base}/metrics`)).parsed.samples.map((sample) => sample.name));
}

/** The `expr` of each rule in a Prometheus rules file (single-line or `|` block). */
function ruleExpressions(yaml: string): string[] {
  const expressions: string[] = [];
  const lines = yaml.split('\n');
  lines.forEach((line, index) => {
    const match = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!match) return;
    const [, indent = '', rest = ''] = match;
    if (rest !== '|' && rest !== '>') {
      expressions.push(rest);
      return;
    }
    const block: string[] = [];
    for (const next of lines.slice(index + 1)) {
      if (next.trim() !== '' && next.search(/\S/) <= indent.length) break;
      block.push(next.trim());
    }
    expressions.push(block.join(' '));
  });
  return expressions;
}

describe('dashboards and alerts query what the exporter serves', () => {
  redisTest(
    'every metric name in the Grafana dashboard and the alert rules is in a scrape of the exporter (or of the API, for its row)',
    async ({ redis }) => {
      const connection = closeAfterTest(openTestRedis(redis.url));
      const engine: EngineStats = {
        activeSequences: 1,
        promptTokensTotal: 10,
        generationTokensTotal: 5,
        decodeCallsTotal: 2,
        decodeTokensTotal: 15,
        fullDecodeCallsTotal: 0,
        decodeBatchTokens: new Map([
          [10, 1],
          [5, 1],
        ]),
        vramTotalBytes: 8e9,
        vramUsedBytes: 4e9,
        stepTimeMsTotal: { decode: 900, sampling: 80, scheduling: 20 },
      };
      const reporter = closeAfterTest(
        new NodeStatsReporter({
          redis: connection,
          prefix: redis.prefix,
          identity: {
            node: 'n1',
            host: 'h',
            gpu: 'cpu',
            accelerator: 'cpu',
            engine: 'node-llama-cpp',
            model: 'm',
            quant: 'F16',
            capabilities: ['text'],
            sequences: 2,
            contextPerSequence: 256,
          },
          engineStats: () => engine,
        }),
      );
      await reporter.start();
      reporter.recordJob({
        task: 'summarize',
        outcome: 'completed',
        queueWaitMs: 5,
        durationMs: 50,
        timeToFirstTokenMs: 10,
        interTokenMs: 2,
      });
      reporter.recordJob({
        task: 'summarize',
        outcome: 'failed',
        errorCode: 'GB_ERR_INFERENCE',
        queueWaitMs: 5,
        durationMs: 50,
        timeToFirstTokenMs: null,
        interTokenMs: null,
      });
      const queue = closeAfterTest(new Queue('generate', { connection, prefix: redis.prefix }));
      await queue.add('job', {});
      const exporter = closeAfterTest(await Exporter.start({ redisUrl: redis.url, prefix: redis.prefix, port: 0 }));

      // Names of samples actually present (not just HELP lines), once the job counts have landed.
      const served = await vi.waitFor(
        async () => {
          const names = new Set((await scrape(exporter.url)).parsed.samples.map((sample) => sample.name));
          expect(names).toContain('gembatch_errors_total');
          return names;
        },
        { timeout: 10_000, interval: 50 },
      );

      const api = await apiMetricNames(redis);
      expect(api).toContain('gembatch_api_http_requests_total');

      const dashboard = JSON.parse(
        await readFile(join(REPO_ROOT, 'infra/grafana/dashboards/gembatch-fleet.json'), 'utf8'),
      ) as unknown;
      const alerts = ruleExpressions(await readFile(join(REPO_ROOT, 'infra/prometheus/alerts.yml'), 'utf8')).map(
        (expr) => ({ where: 'alerts.yml', expr }),
      );
      expect(alerts).toHaveLength(11);
      const queries = [...dashboardExpressions(dashboard), ...alerts];
      const missing: string[] = [];
      for (const { where, expr } of queries) {
        const names = promqlMetricNames(expr);
        if (names.length === 0) missing.push(`${where}: no metric in ${expr}`);
        for (const name of names)
          if (!served.has(name) && !api.has(name) && !PROMETHEUS_OWN.has(name)) missing.push(`${where}: ${name}`);
      }
      expect(missing).toEqual([]);
    },
  );
});
