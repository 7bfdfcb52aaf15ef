import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { vi } from 'vitest';
import { EmbeddedStack } from '@gembatch/cli';
import { findFreePort, tempDir, type RedisTestContext, type TempDir } from '@gembatch/testing';
import type { BatchObject } from '../src/index.ts';

/** A whole stack (API with its batch feeder, one worker, exporter) as child processes, and clients for it. */
export interface BatchStack {
  stack: EmbeddedStack;
  api: string;
  openai: OpenAI;
  dir: TempDir;
  dataDir: string;
  /** JSON request to the API; throws on a non-2xx answer. */
  call<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  /** Polls until the batch reaches one of `statuses` (bounded). */
  waitFor(
    batchId: string,
    statuses: readonly string[],
    timeoutMs?: number,
    check?: (batch: BatchObject) => boolean,
  ): Promise<BatchObject>;
  /** Stops every service (idempotent). */
  stop(): Promise<void>;
  /** The API log's error and warning lines (for failure messages). */
  apiProblems(): Promise<string>;
}

export interface BatchStackOptions {
  /** Worker model and projector paths. */
  model: string;
  mmproj?: string;
  sequences?: number;
  env?: Record<string, string>;
  /** Reuse this data dir (a restart); otherwise a fresh temp dir. */
  dir?: TempDir;
}

/** Starts the stack on the test's Redis and prefix; the caller stops it (and removes `dir`) in `finally`. */
export async function startBatchStack(redis: RedisTestContext, options: BatchStackOptions): Promise<BatchStack> {
  const dir = options.dir ?? (await tempDir('gembatch-batches-'));
  const dataDir = join(dir.path, 'data');
  const apiPort = await findFreePort();
  const stack = new EmbeddedStack({
    redisUrl: redis.url,
    apiPort,
    exporterPort: await findFreePort(),
    dataDir,
    model: options.model,
    sequences: options.sequences ?? 4,
    env: {
      GEMBATCH_REDIS_PREFIX: redis.prefix,
      GEMBATCH_THREADS: '1',
      GEMBATCH_METRICS_PORT: '0',
      GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
      // Short backoff: a retried request should not slow a test down.
      LOG_LEVEL: 'info',
      ...(options.mmproj ? { GEMBATCH_MMPROJ: options.mmproj } : {}),
      ...options.env,
    },
    status: { write: () => true } as unknown as NodeJS.WritableStream,
    readyTimeoutMs: 120_000,
  });
  try {
    await stack.start();
  } catch (error) {
    await stack.stop(5_000);
    throw error;
  }
  const api = `http://127.0.0.1:${apiPort}`;
  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> => {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  return {
    stack,
    api,
    openai: new OpenAI({ apiKey: 'unused', baseURL: `${api}/v1`, maxRetries: 0 }),
    dir,
    dataDir,
    call,
    async waitFor(batchId, statuses, timeoutMs = 120_000, check) {
      return vi.waitFor(
        async () => {
          const batch = await call<BatchObject>('GET', `/v1/batches/${batchId}`);
          if (!statuses.includes(batch.status) || (check && !check(batch)))
            throw new Error(`batch ${batchId} is ${batch.status} (${JSON.stringify(batch.request_counts)})`);
          return batch;
        },
        { timeout: timeoutMs, interval: 200 },
      );
    },
    stop: () => stack.stop(15_000),
    async apiProblems() {
      const text = await readFile(join(dataDir, 'logs', 'api.log'), 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter((line) => /"level":"(error|warn|fatal)"/.test(line))
        .slice(-5)
        .map((line) => line.slice(0, 600))
        .join('\n');
    },
  };
}

/** JSONL text of request lines. */
export function jsonl(lines: readonly unknown[]): string {
  return lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n';
}

/** Parses JSONL text into objects. */
export function parseJsonl<T = Record<string, unknown>>(text: string): T[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}
