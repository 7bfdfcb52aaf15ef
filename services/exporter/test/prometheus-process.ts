import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from '@gembatch/testing';

/** Startup bound for a real Prometheus on a machine with few, busy cores (it usually takes 1-3 s). */
const READY_TIMEOUT_MS = 60_000;
/** Poll period while waiting for `/-/ready`. */
const READY_POLL_MS = 100;
/** Grace for SIGTERM before SIGKILL at shutdown. */
const STOP_GRACE_MS = 10_000;

/** One series of an instant query's result. */
interface InstantSeries {
  metric: Record<string, string>;
  value: number;
}

/** A real `prometheus` server (Debian package) on loopback, scraping the given targets (test helper). */
export interface PrometheusProcess {
  url: string;
  /** Runs an instant query through the HTTP API. */
  query(promql: string): Promise<InstantSeries[]>;
  /** Stops the server and removes its data. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts `prometheus` with a temp config scraping `targets` (host:port, path `/metrics`) every
 * `scrapeIntervalS` seconds, and waits until it is ready.
 */
export async function startPrometheus(targets: string[], scrapeIntervalS = 1): Promise<PrometheusProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'gembatch-prometheus-'));
  const port = await findFreePort('127.0.0.1');
  const config = [
    'global:',
    `  scrape_interval: ${scrapeIntervalS}s`,
    `  evaluation_interval: ${scrapeIntervalS}s`,
    'scrape_configs:',
    '  - job_name: gembatch-exporter',
    '    static_configs:',
    `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  const child = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    // Keep the tail for error messages only.
    log = (log + chunk.toString('utf8')).slice(-4_000);
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = once(child, 'exit');
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${log}`);
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop(child, exited);
      throw new Error(`prometheus was not ready within ${READY_TIMEOUT_MS} ms: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    async query(promql) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
      };
      if (body.status !== 'success' || !body.data) throw new Error(`query failed: ${body.error ?? response.status}`);
      return body.data.result.map((series) => ({ metric: series.metric, value: Number(series.value[1]) }));
    },
    close() {
      closing ??= (async () => {
        await stop(child, exited);
        await rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

async function stop(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
