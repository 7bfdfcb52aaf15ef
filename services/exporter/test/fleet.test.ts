import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, expect, onTestFinished } from 'vitest';
import {
  DEFAULT_TENANT,
  GenerateJobResult,
  NODE_STATS_TTL_SECONDS,
  QUEUE_NAMES,
  newJobId,
  type GenerateJobData,
  errorMessage,
} from '@gembatch/contracts';
import { JobProducer } from '@gembatch/queue';
import { listLiveNodes } from '@gembatch/node-stats';
import { FileSystemBlobStore } from '@gembatch/storage';
import { closeAfterTest, ensureTestModel, openTestRedis, redisTest, tempDir } from '@gembatch/testing';
import { Exporter } from '../src/index.ts';
import { startPrometheus } from './prometheus-process.ts';
import { REPO_ROOT, hasCommand } from './repo-paths.ts';
import { scrape, valuesBy } from './scrape.ts';

/**
 * Acceptance of the metrics issue: two real worker processes (tiny GGUF, different node ids) run
 * jobs from one Redis; the exporter's token totals equal the jobs' generated tokens exactly, a
 * real Prometheus computes a rate per node, and a stopped worker's series disappear.
 */

const PROMETHEUS = hasCommand('prometheus');
if (!PROMETHEUS) console.warn('prometheus not found: skipping the fleet acceptance test (apt-get install prometheus)');

/** Jobs per wave: two per worker, one per sequence. */
const WAVE = 4;
/** Waves before giving up on BullMQ handing both workers a job. */
const MAX_WAVES = 8;
/** Starting a worker = tsx compiling it + loading the model; with few, busy cores this can take a minute. */
const WORKER_START_MS = 180_000;
/** A wave of tiny-model jobs takes well under a second of compute; the rest is scheduling on a loaded machine. */
const WAVE_MS = 60_000;
/** Nodes heartbeat every 2 s; allow a few beats. */
const HEARTBEAT_SETTLE_MS = 15_000;
const POLL_MS = 200;

interface WorkerProcess {
  node: string;
  child: ChildProcess;
  exited: Promise<unknown>;
  log: () => string;
}

function startWorker(node: string, env: Record<string, string>): WorkerProcess {
  const child = spawn(join(REPO_ROOT, 'node_modules/.bin/tsx'), ['services/worker/src/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, GEMBATCH_NODE_ID: node },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk: Buffer): void => {
    // Only the tail, for failure messages (worker logs carry ids and codes, no content).
    log = (log + chunk.toString('utf8')).slice(-6_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { node, child, exited: once(child, 'exit'), log: () => log };
}

async function stopWorker(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  worker.child.kill('SIGTERM');
  // The worker drains (grace set to 5 s below), disposes the model and exits; then SIGKILL.
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 20_000);
  await worker.exited;
  clearTimeout(timer);
}

/**
 * Retries `check` until it passes or `timeoutMs` elapses, failing at once (with its log) if a
 * worker process dies meanwhile.
 */
async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  workers: WorkerProcess[],
  check: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const worker of workers) {
      if (worker.child.exitCode !== null)
        throw new Error(
          `worker ${worker.node} exited with ${worker.child.exitCode} while waiting for ${what}:\n${worker.log()}`,
        );
    }
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}: ${errorMessage(error)}\n${workers.map((w) => `--- ${w.node}\n${w.log()}`).join('\n')}`,
        );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

describe.skipIf(!PROMETHEUS)('fleet metrics, end to end', () => {
  redisTest(
    'two workers: exact token totals per node, tok/s > 0, Prometheus rates per node, a stopped node disappears',
    async ({ redis }) => {
      const model = await ensureTestModel('tiny');
      const data = await tempDir('gembatch-fleet-');
      onTestFinished(() => data.cleanup());
      const connection = closeAfterTest(openTestRedis(redis.url));
      const blobs = new FileSystemBlobStore({ root: join(data.path, 'blobs') });
      const producer = closeAfterTest(new JobProducer({ connection, prefix: redis.prefix }));
      const exporter = closeAfterTest(await Exporter.start({ redisUrl: redis.url, prefix: redis.prefix, port: 0 }));
      const prometheus = closeAfterTest(await startPrometheus([new URL(exporter.url).host]));

      const env = {
        REDIS_URL: redis.url,
        GEMBATCH_REDIS_PREFIX: redis.prefix,
        GEMBATCH_MODEL: model,
        GEMBATCH_SEQUENCES: '2',
        GEMBATCH_THREADS: '1',
        GEMBATCH_DATA_DIR: data.path,
        GEMBATCH_METRICS_PORT: '0',
        GEMBATCH_LIVEZ_PORT: '0',
        GEMBATCH_SHUTDOWN_GRACE_SECONDS: '5',
        LOG_LEVEL: 'warn',
      };
      const workers = ['fleet-a', 'fleet-b'].map((node) => startWorker(node, env));
      // Registered after the Redis fixture, so the workers are gone before its connection leak check.
      onTestFinished(async () => {
        await Promise.all(workers.map(stopWorker));
      });
      const [workerA, workerB] = workers as [WorkerProcess, WorkerProcess];

      await waitUntil('both workers to heartbeat', WORKER_START_MS, workers, async () => {
        expect((await listLiveNodes(connection, redis.prefix)).map((n) => n.node).sort()).toEqual([
          'fleet-a',
          'fleet-b',
        ]);
      });
      // Prometheus must hold a sample of each counter before it grows, or rate() sees no increase.
      await waitUntil('Prometheus to scrape both nodes', HEARTBEAT_SETTLE_MS, workers, async () => {
        expect(await prometheus.query('gembatch_generation_tokens_total')).toHaveLength(2);
      });

      const input = await blobs.put(
        Buffer.from(
          'The quarterly report shows revenue grew while costs stayed flat. The board approved the budget for next year.',
        ),
      );
      const results: GenerateJobResult[] = [];
      for (let wave = 0; wave < MAX_WAVES && new Set(results.map((r) => r.node)).size < 2; wave++) {
        const ids: string[] = [];
        for (let i = 0; i < WAVE; i++) {
          const job: GenerateJobData = {
            job_id: newJobId(),
            tenant: DEFAULT_TENANT,
            task: 'summarize',
            options: { length: 'short' },
            max_tokens: 24,
            submitted_at: Date.now(),
            input: { type: 'text', sha256: input.sha256 },
          };
          await producer.submit(job, QUEUE_NAMES.generate);
          ids.push(job.job_id);
        }
        const finished = await waitUntil(`wave ${wave + 1} of jobs`, WAVE_MS, workers, async () =>
          Promise.all(
            ids.map(async (id) => {
              const job = await producer.queues.generate.getJob(id);
              const state = await job?.getState();
              if (state === 'failed') throw new Error(`job failed: ${job?.failedReason ?? ''}`);
              expect(state).toBe('completed');
              return GenerateJobResult.parse(job?.returnvalue);
            }),
          ),
        );
        results.push(...finished);
      }
      const expected = new Map<string, number>();
      for (const result of results)
        expected.set(result.node, (expected.get(result.node) ?? 0) + result.usage.generated_tokens);
      expect([...expected.keys()].sort()).toEqual(['fleet-a', 'fleet-b']);
      for (const tokens of expected.values()) expect(tokens).toBeGreaterThan(0);

      // Exact: each node's counter equals the generated tokens of the jobs it ran, from the job records.
      const scraped = await waitUntil('the exporter to show every job', HEARTBEAT_SETTLE_MS, workers, async () => {
        const current = await scrape(exporter.url);
        expect(valuesBy(current, 'gembatch_generation_tokens_total', 'node')).toEqual(expected);
        return current;
      });
      for (const [node, tokensPerSecond] of valuesBy(scraped, 'gembatch_node_generation_tokens_per_second', 'node'))
        expect(tokensPerSecond, node).toBeGreaterThan(0);
      expect(valuesBy(scraped, 'gembatch_node_generation_tokens_per_second', 'node').size).toBe(2);
      expect(valuesBy(scraped, 'gembatch_jobs_total', 'task').get('summarize')).toBe(results.length);

      const rates = await waitUntil('Prometheus to see both rates', HEARTBEAT_SETTLE_MS, workers, async () => {
        const series = await prometheus.query('sum by (node) (rate(gembatch_generation_tokens_total[30s]))');
        expect(series).toHaveLength(2);
        for (const s of series) expect(s.value).toBeGreaterThan(0);
        return series;
      });
      expect(rates.map((s) => s.metric.node).sort()).toEqual(['fleet-a', 'fleet-b']);

      // A stopped worker's series are gone within the TTL (a graceful stop removes them at once).
      await stopWorker(workerB);
      await waitUntil("fleet-b's series to disappear", NODE_STATS_TTL_SECONDS * 1000, [workerA], async () => {
        const after = await scrape(exporter.url);
        expect([...valuesBy(after, 'gembatch_node_info', 'node').keys()]).toEqual(['fleet-a']);
        expect([...valuesBy(after, 'gembatch_generation_tokens_total', 'node').keys()]).toEqual(['fleet-a']);
      });
    },
    600_000,
  );
});
