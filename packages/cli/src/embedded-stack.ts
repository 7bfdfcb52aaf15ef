import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { findFreePort, findOnPath, pingRedisOnce } from '@gembatch/config';
import { engineThreadpoolSize } from '@gembatch/inference/threadpool-size';
import { ApiClient } from './api-client.ts';
import { followWorkerEvents } from './worker-events.ts';

/** Repository root, where the services' entry points live. */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface EmbeddedStackOptions {
  /** API port. Defaults to `8080`. */
  apiPort?: number;
  /** Exporter port. Defaults to `9464`. */
  exporterPort?: number;
  /** Data directory (blobs, models, Redis AOF, logs). Defaults to `.gembatch`. */
  dataDir?: string;
  /** `GEMBATCH_MODEL` for the worker (path or `hf:` URI); unset lets the worker choose. */
  model?: string;
  /** `GEMBATCH_SEQUENCES` for the worker. */
  sequences?: number;
  /**
   * Worker processes, named `worker`, `worker-2`, ...; beyond the first each gets its own
   * `GEMBATCH_NODE_ID` (`<name>-<pid of this process>`). Defaults to `1`, or the length of `simulateVram`.
   */
  workers?: number;
  /**
   * Accelerator memory each worker plans with (`GEMBATCH_VRAM_BYTES`, e.g. `['12GiB', '16GiB', '32GiB']`),
   * one per worker in order, so each picks its own catalog quantization; the last repeats when there are
   * more workers. Defaults to none (each probes its hardware).
   */
  simulateVram?: readonly string[];
  /** Extra environment per worker, by index (`[{GEMBATCH_DATA_DIR: 'a'}, {...}]`), applied last. Defaults to none. */
  workerEnv?: readonly Record<string, string>[];
  /** Use this Redis instead of starting one. Defaults to `$REDIS_URL`, else a `redis-server` child. */
  redisUrl?: string;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /** Where status lines go. Defaults to stderr. */
  status?: NodeJS.WritableStream;
  /** Stream every service's log lines to the status stream too. Defaults to `false`. */
  verbose?: boolean;
  /** Give up waiting for readiness after this long (ms). Defaults to 30 minutes (a first model download can be long). */
  readyTimeoutMs?: number;
}

export interface StackUrls {
  api: string;
  exporter: string;
  redis: string;
  logs: string;
}

interface Service {
  name: string;
  child: ChildProcess;
  log: WriteStream;
  exited: Promise<number | null>;
}

/**
 * The whole stack on one machine as child processes: a `redis-server` with AOF under the data
 * dir (unless `REDIS_URL` is set), the API, one worker and the exporter. `stop()` drains them in
 * order: API first (no new work), worker (finishes or hands back jobs), exporter, Redis last.
 */
export class EmbeddedStack {
  readonly #options: EmbeddedStackOptions;
  readonly #services: Service[] = [];
  #stopping: Promise<void> | undefined;

  constructor(options: EmbeddedStackOptions = {}) {
    this.#options = options;
  }

  /** The data directory, resolved. */
  get dataDir(): string {
    return resolve(this.#options.dataDir ?? '.gembatch');
  }

  async start(): Promise<StackUrls> {
    const o = this.#options;
    const status = o.status ?? process.stderr;
    const dataDir = this.dataDir;
    const logs = join(dataDir, 'logs');
    await mkdir(logs, { recursive: true });

    let redisUrl = o.redisUrl ?? process.env.REDIS_URL ?? '';
    if (!redisUrl) {
      const redisDir = join(dataDir, 'redis');
      await mkdir(redisDir, { recursive: true });
      const port = await findFreePort();
      assertCommand('redis-server', 'apt-get install redis-server  (macOS: brew install redis)');
      // AOF so queued jobs survive a restart of the stack; no RDB snapshots.
      this.#spawn(
        'redis',
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          redisDir,
          '--appendonly',
          'yes',
          '--save',
          '',
          '--maxmemory-policy',
          'noeviction',
        ],
        {},
        logs,
        o,
      );
      redisUrl = `redis://127.0.0.1:${port}`;
      await waitFor(
        async () => (await pingRedisOnce('127.0.0.1', port, 1_000)) === '+PONG',
        10_000,
        'redis-server did not answer',
      );
      status.write(`redis      ${redisUrl} (data in ${redisDir})\n`);
    }

    const apiPort = o.apiPort ?? 8080;
    const exporterPort = o.exporterPort ?? 9464;
    const common: Record<string, string> = { REDIS_URL: redisUrl, GEMBATCH_DATA_DIR: dataDir, ...o.env };
    // libuv sizes its threadpool when the worker starts, so it is set here (sampling runs on it; see
    // engineThreadpoolSize), unless this process was given one (an empty value would mean 1 thread).
    const threadpool: Record<string, string> = process.env.UV_THREADPOOL_SIZE
      ? {}
      : { UV_THREADPOOL_SIZE: String(engineThreadpoolSize(availableParallelism())) };
    // Embedded workers serve no /metrics of their own (the exporter serves every node's from Redis),
    // so two stacks, or several workers, on one host never fight over the worker ports 9465 and 9466
    // (`/livez` is for an orchestrator; `gembatch up` watches its children itself).
    const workerEnv: Record<string, string> = {
      ...threadpool,
      GEMBATCH_METRICS_PORT: '0',
      GEMBATCH_LIVEZ_PORT: '0',
      ...common,
      ...(o.model ? { GEMBATCH_MODEL: o.model } : {}),
      ...(o.sequences ? { GEMBATCH_SEQUENCES: String(o.sequences) } : {}),
    };
    const vram = o.simulateVram ?? [];
    const workers = o.workers ?? Math.max(1, vram.length);
    for (let index = 1; index <= workers; index++) {
      const name = index === 1 ? 'worker' : `worker-${index}`;
      const memory = vram[Math.min(index, vram.length) - 1];
      // Two workers on one host would publish stats under the same default node id.
      const nodeId: Record<string, string> =
        workers > 1 && !o.env?.GEMBATCH_NODE_ID
          ? { GEMBATCH_NODE_ID: `${name}-${process.pid}${memory ? `-${memory.toLowerCase()}` : ''}` }
          : {};
      // The worker reports its start (download progress, model decision, ready, failure) as typed events over IPC.
      const child = this.#spawnTs(
        name,
        'services/worker/src/main.ts',
        { ...workerEnv, ...nodeId, ...(memory ? { GEMBATCH_VRAM_BYTES: memory } : {}), ...o.workerEnv?.[index - 1] },
        logs,
        o,
        true,
      );
      followWorkerEvents(child, status, workers > 1 ? name : undefined);
    }
    this.#spawnTs('api', 'services/api/src/server.ts', { ...common, GEMBATCH_API_PORT: String(apiPort) }, logs, o);
    this.#spawnTs(
      'exporter',
      'services/exporter/src/main.ts',
      { ...common, GEMBATCH_EXPORTER_PORT: String(exporterPort) },
      logs,
      o,
    );

    const api = `http://127.0.0.1:${apiPort}`;
    const client = new ApiClient({ baseUrl: api });
    status.write('waiting for the worker to load its model...\n');
    await waitFor(
      () => client.ready(),
      o.readyTimeoutMs ?? 30 * 60_000,
      `the stack did not become ready; see the logs in ${logs}`,
      () => this.#firstExit(),
    );
    if (workers > 1) {
      status.write(`waiting for all ${workers} workers...\n`);
      await waitFor(
        async () => (await liveWorkers(api)) >= workers,
        o.readyTimeoutMs ?? 30 * 60_000,
        `not all ${workers} workers became ready; see the logs in ${logs}`,
        () => this.#firstExit(),
      );
    }
    return { api, exporter: `http://127.0.0.1:${exporterPort}/metrics`, redis: redisUrl, logs };
  }

  /** The process id of a running service (`api`, `worker`, `exporter`, `redis`), e.g. to read its memory. */
  pid(name: string): number | undefined {
    return this.#services.find((s) => s.name === name)?.child.pid;
  }

  /** Stops every service (idempotent): SIGTERM in order, SIGKILL after `graceMs`. */
  stop(graceMs = 30_000): Promise<void> {
    this.#stopping ??= (async () => {
      const order = [
        'api',
        ...this.#services.filter((s) => s.name.startsWith('worker')).map((s) => s.name),
        'exporter',
        'redis',
      ];
      for (const name of order) {
        const service = this.#services.find((s) => s.name === name);
        if (!service) continue;
        if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGTERM');
        const timer = setTimeout(() => service.child.kill('SIGKILL'), graceMs);
        await service.exited;
        clearTimeout(timer);
        service.log.end();
      }
    })();
    return this.#stopping;
  }

  /**
   * Sends `signal` to one service (`api`, `worker`, `worker-2`..., `exporter`, `redis`), e.g. to
   * test a crash (`SIGKILL`) or a drain (`SIGTERM`); resolves with its exit code (null when killed
   * by a signal) once it has exited.
   */
  async kill(name: string, signal: NodeJS.Signals): Promise<number | null> {
    const service = this.#services.find((s) => s.name === name);
    if (!service) throw new Error(`no service named ${name} in this stack`);
    if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill(signal);
    return service.exited;
  }

  #spawnTs(
    name: string,
    entry: string,
    env: Record<string, string>,
    logs: string,
    o: EmbeddedStackOptions,
    ipc = false,
  ): ChildProcess {
    return this.#spawn(name, process.execPath, ['--import', 'tsx', join(REPO_ROOT, entry)], env, logs, o, ipc);
  }

  /** Starts a service with its output in `<logs>/<name>.log`; `ipc` opens a message channel to it. */
  #spawn(
    name: string,
    command: string,
    args: string[],
    env: Record<string, string>,
    logs: string,
    o: EmbeddedStackOptions,
    ipc = false,
  ): ChildProcess {
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(join(logs, `${name}.log`), { flags: 'a' });
    // Both are pipes (stdio above); the type cannot tell.
    for (const stream of [child.stdout, child.stderr].filter((piped) => piped !== null)) {
      createInterface({ input: stream }).on('line', (line) => {
        log.write(`${line}\n`);
        if (o.verbose) (o.status ?? process.stderr).write(`${name.padEnd(9)}| ${line}\n`);
      });
    }
    const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
    this.#services.push({ name, child, log, exited });
    return child;
  }

  /** Rejects when a service exits before the stack is ready. */
  async #firstExit(): Promise<string | undefined> {
    const dead = this.#services.find((s) => s.child.exitCode !== null);
    if (!dead) return undefined;
    const path = String(dead.log.path);
    const reason = await lastErrorLine(path);
    return `${dead.name} exited with code ${dead.child.exitCode}; see ${path}${reason ? `; its last error: ${reason}` : ''}`;
  }
}

/**
 * The last error a service logged before it died (its last line when none says error), so that a
 * failed start says why in CI output too, where the log directory is gone with the test's.
 * Services log no document text, so the line is safe to show.
 */
async function lastErrorLine(path: string): Promise<string | undefined> {
  const lines = (await readFile(path, 'utf8').catch(() => ''))
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .slice(-40);
  const line = lines.findLast((l) => /"level":"(error|fatal)"|Error/.test(l)) ?? lines.at(-1);
  return line?.slice(0, 500);
}

async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  message: string,
  fatal?: () => Promise<string | undefined>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    const dead = await fatal?.();
    if (dead) throw new Error(dead);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(message);
}

/** Live workers as `/readyz` counts them (0 when it does not answer). */
async function liveWorkers(api: string): Promise<number> {
  try {
    const response = await fetch(`${api}/readyz`, { signal: AbortSignal.timeout(2_000) });
    const body = (await response.json()) as { checks?: { workers?: number | null } };
    return body.checks?.workers ?? 0;
  } catch {
    return 0;
  }
}

function assertCommand(command: string, install: string): void {
  if (findOnPath(command) === null && !existsSync(command))
    throw new Error(`${command} is not installed; install it with: ${install}`);
}
