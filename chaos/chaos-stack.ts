import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { EmbeddedStack, type StackUrls } from '@gembatch/cli';
import type { JobView } from '@gembatch/contracts';
import { JobProducer } from '@gembatch/queue';
import { GEMMA4_12B_CATALOG } from '@gembatch/inference';
import {
  ensureTestModel,
  findFreePort,
  openTestRedis,
  startRedis,
  tempDir,
  writeStandInModels,
  type RedisHandle,
} from '@gembatch/testing';

/**
 * Bound on starting the stack (API, workers and exporter under tsx, the model loaded): tens of
 * seconds on a machine with few, busy cores; Vitest's hook timeout of the chaos config is shorter.
 */
export const STACK_START_TIMEOUT_MS = 200_000;

/** How often the scenarios poll Redis or the API while they wait (ms). */
const POLL_MS = 200;

export interface ChaosStackOptions {
  /** Worker processes. Defaults to `1`. */
  workers?: number;
  /** Sequences per worker. Defaults to `4`. */
  sequences?: number;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /**
   * Accelerator memory per worker (`['12GiB', '16GiB', '32GiB']`): each worker plans with it and picks
   * its catalog quantization, loading a tiny stand-in written under that quant's file name in
   * `<dataDir>/models`. Defaults to none (every worker runs the tiny test model as `GEMBATCH_MODEL`).
   */
  simulateVram?: readonly string[];
}

/**
 * The embedded stack (API, workers, exporter as real processes) on the tiny test model, against a
 * spawned `redis-server` with AOF that the scenario controls (`redis.restart({hard: true})` is a
 * kill -9 and a restart on the same port and data dir).
 */
export interface ChaosStack {
  stack: EmbeddedStack;
  urls: StackUrls;
  redis: RedisHandle;
  prefix: string;
  /** The stack's data dir (blobs, logs). */
  dataDir: string;
  /** Reads queues and job records directly (states, attempts, events), on its own connection. */
  producer: JobProducer;
  connection: JobProducer['redis'];
  /** Every line a service wrote so far (`api`, `worker`, `worker-2`..., `exporter`). */
  logLines(service: string): Promise<string[]>;
  /** POSTs a JSON body to the API and returns the parsed answer; throws on a non-2xx. */
  post<T>(path: string, body: unknown, headers?: Record<string, string>): Promise<T>;
  /** Stops every process and removes the data. Idempotent. */
  close(): Promise<void>;
}

export async function startChaosStack(options: ChaosStackOptions = {}): Promise<ChaosStack> {
  const dir = await tempDir('gembatch-chaos-');
  const redis = await startRedis({ mode: 'spawn', appendOnly: true });
  const prefix = `chaos-${randomBytes(4).toString('hex')}`;
  const dataDir = join(dir.path, 'data');
  const workers = options.workers ?? options.simulateVram?.length ?? 1;
  if (options.simulateVram)
    await writeStandInModels(
      join(dataDir, 'models'),
      GEMMA4_12B_CATALOG.entries.map((e) => e.file),
    );
  const stack = new EmbeddedStack({
    redisUrl: redis.url,
    apiPort: await findFreePort(),
    exporterPort: await findFreePort(),
    dataDir,
    ...(options.simulateVram ? { simulateVram: options.simulateVram } : { model: await ensureTestModel('tiny') }),
    sequences: options.sequences ?? 4,
    workers,
    env: {
      GEMBATCH_REDIS_PREFIX: prefix,
      GEMBATCH_THREADS: '1',
      GEMBATCH_METRICS_PORT: '0',
      GEMBATCH_CONTEXT_PER_SEQUENCE: '2048',
      LOG_LEVEL: 'debug',
      ...options.env,
    },
    status: { write: () => true } as unknown as NodeJS.WritableStream,
    readyTimeoutMs: 90_000,
  });
  const connection = openTestRedis(redis.url, {
    name: `${prefix}:chaos`,
    redisOptions: { maxRetriesPerRequest: null },
  });
  // The scenario itself kills Redis: its own connection must ride that out quietly.
  connection.on('error', () => undefined);
  const producer = new JobProducer({ connection, prefix });
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await stack.stop(15_000);
      await producer.close();
      connection.disconnect();
      await redis.close();
      await dir.cleanup();
    })();
    return closing;
  };
  try {
    const urls = await stack.start();
    // start() resolves once one worker is ready; scenarios with several need them all.
    await waitUntil(
      async () =>
        ((await (await fetch(`${urls.api}/readyz`)).json()) as { checks: { workers: number | null } }).checks
          .workers === workers,
      90_000,
      `${workers} workers did not become ready`,
    );
    return {
      stack,
      urls,
      redis,
      prefix,
      dataDir,
      producer,
      connection,
      async logLines(service) {
        const text = await readFile(join(urls.logs, `${service}.log`), 'utf8').catch(() => '');
        return text.split('\n').filter((line) => line.length > 0);
      },
      async post<T>(path: string, body: unknown, headers: Record<string, string> = {}) {
        const response = await fetch(`${urls.api}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        });
        const text = await response.text();
        if (!response.ok) throw new Error(`POST ${path}: HTTP ${response.status} ${text.slice(0, 300)}`);
        return JSON.parse(text) as T;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Polls `check` every `POLL_MS` until it returns true; throws `message` after `timeoutMs`. */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  message: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not answering yet (a restarting service): poll again.
    }
    if (Date.now() > deadline) throw new Error(`${message} (after ${Math.round(timeoutMs / 1000)} s)`);
    await delay(POLL_MS);
  }
}

/** Submits `count` inline-text jobs through the API; returns their ids in order. */
export async function submitTextJobs(
  chaos: ChaosStack,
  count: number,
  body: (index: number) => Record<string, unknown>,
): Promise<string[]> {
  const ids: string[] = [];
  // A few at a time: the API is one process on a small machine.
  for (let start = 0; start < count; start += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, count - start) }, (_, i) => chaos.post<JobView>('/v1/jobs', body(start + i))),
    );
    ids.push(...batch.map((view) => view.id));
  }
  return ids;
}

/** Where each job stands in BullMQ, read directly from Redis. */
export interface JobTally {
  completed: number;
  failed: number;
  /** Not finished yet (waiting, active, delayed, prioritized). */
  pending: number;
  /** Not found at all: lost. */
  missing: number;
  failedReasons: string[];
}

export async function tallyJobs(chaos: ChaosStack, ids: readonly string[]): Promise<JobTally> {
  const queue = chaos.producer.queues.generate;
  const tally: JobTally = { completed: 0, failed: 0, pending: 0, missing: 0, failedReasons: [] };
  const states = await Promise.all(
    ids.map(async (id) => ({ id, state: await queue.getJobState(id), job: await queue.getJob(id) })),
  );
  for (const { state, job } of states) {
    if (state === 'completed') tally.completed++;
    else if (state === 'failed') {
      tally.failed++;
      tally.failedReasons.push(job?.failedReason ?? '?');
    } else if (state === 'unknown') tally.missing++;
    else tally.pending++;
  }
  return tally;
}

/** `completed` events per job id in the generate queue's event stream: exactly one each means no job completed twice. */
export async function completionsPerJob(chaos: ChaosStack): Promise<Map<string, number>> {
  const entries = (await chaos.connection.xrange(`${chaos.prefix}:generate:events`, '-', '+')) as Array<
    [string, string[]]
  >;
  const counts = new Map<string, number>();
  for (const [, fields] of entries) {
    const record = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) record.set(fields[i] as string, fields[i + 1] as string);
    if (record.get('event') !== 'completed') continue;
    const id = record.get('jobId') as string;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Seconds with one decimal, for the report line. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
