import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ApiClient } from './api-client.ts';

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
   * `GEMBATCH_NODE_ID` (`<name>-<pid of this process>`) and no `/metrics` port unless `env` sets one. Defaults to `1`.
   */
  workers?: number;
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

  async start(): Promise<StackUrls> {
    const o = this.#options;
    const status = o.status ?? process.stderr;
    const dataDir = resolve(o.dataDir ?? '.gembatch');
    const logs = join(dataDir, 'logs');
    await mkdir(logs, { recursive: true });

    let redisUrl = o.redisUrl ?? process.env.REDIS_URL ?? '';
    if (!redisUrl) {
      const redisDir = join(dataDir, 'redis');
      await mkdir(redisDir, { recursive: true });
      const port = await freePort();
      assertCommand('redis-server', 'apt-get install redis-server  (macOS: brew install redis)');
      // AOF so queued jobs survive a restart of the stack; no RDB snapshots.
      this.#spawn('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction'], {}, logs, o);
      redisUrl = `redis://127.0.0.1:${port}`;
      await waitFor(async () => pingRedis(port), 10_000, 'redis-server did not answer');
      status.write(`redis      ${redisUrl} (data in ${redisDir})\n`);
    }

    const apiPort = o.apiPort ?? 8080;
    const exporterPort = o.exporterPort ?? 9464;
    const common: Record<string, string> = { REDIS_URL: redisUrl, GEMBATCH_DATA_DIR: dataDir, ...o.env };
    // No /livez on a local stack unless asked for: nothing probes it, and stacks side by side (tests) would fight for its port.
    const workerEnv = { GEMBATCH_LIVEZ_PORT: '0', ...common, ...(o.model ? { GEMBATCH_MODEL: o.model } : {}), ...(o.sequences ? { GEMBATCH_SEQUENCES: String(o.sequences) } : {}) };
    this.#spawnTs('worker', 'services/worker/src/main.ts', workerEnv, logs, o, (line) => this.#workerProgress(line, status));
    for (let index = 2; index <= (o.workers ?? 1); index++) {
      // Two workers on one host would publish stats under the same default node id and fight for one metrics port.
      this.#spawnTs(`worker-${index}`, 'services/worker/src/main.ts', { GEMBATCH_NODE_ID: `worker-${index}-${process.pid}`, GEMBATCH_METRICS_PORT: '0', ...workerEnv }, logs, o);
    }
    this.#spawnTs('api', 'services/api/src/server.ts', { ...common, GEMBATCH_API_PORT: String(apiPort) }, logs, o);
    this.#spawnTs('exporter', 'services/exporter/src/main.ts', { ...common, GEMBATCH_EXPORTER_PORT: String(exporterPort) }, logs, o);

    const api = `http://127.0.0.1:${apiPort}`;
    const client = new ApiClient({ baseUrl: api });
    status.write('waiting for the worker to load its model...\n');
    await waitFor(() => client.ready(), o.readyTimeoutMs ?? 30 * 60_000, `the stack did not become ready; see the logs in ${logs}`, () => this.#firstExit());
    return { api, exporter: `http://127.0.0.1:${exporterPort}/metrics`, redis: redisUrl, logs };
  }

  /** The process id of a running service (`api`, `worker`, `exporter`, `redis`), e.g. to read its memory. */
  pid(name: string): number | undefined {
    return this.#services.find((s) => s.name === name)?.child.pid;
  }

  /** Stops every service (idempotent): SIGTERM in order, SIGKILL after `graceMs`. */
  stop(graceMs = 30_000): Promise<void> {
    this.#stopping ??= (async () => {
      const order = ['api', ...this.#services.filter((s) => s.name.startsWith('worker')).map((s) => s.name), 'exporter', 'redis'];
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

  #workerProgress(line: string, status: NodeJS.WritableStream): void {
    try {
      const entry = JSON.parse(line) as { msg?: string; percent?: number; quant?: string; model?: string; why?: string; level?: string; code?: string; err?: { message?: string } };
      if (entry.msg === 'downloading model') status.write(`downloading model: ${entry.percent}%\n`);
      else if (entry.msg === 'model decision') status.write(`model      ${entry.model} (${entry.quant}): ${entry.why}\n`);
      else if (entry.level === 'fatal' || entry.level === 'error') status.write(`worker     ${entry.msg}${entry.code ? ` (${entry.code})` : ''}${entry.err?.message ? `: ${entry.err.message}` : ''}\n`);
    } catch {
      // Not a JSON log line (native library output): it is in the log file.
    }
  }

  #spawnTs(name: string, entry: string, env: Record<string, string>, logs: string, o: EmbeddedStackOptions, onLine?: (line: string) => void): void {
    this.#spawn(name, process.execPath, ['--import', 'tsx', join(REPO_ROOT, entry)], env, logs, o, onLine);
  }

  #spawn(name: string, command: string, args: string[], env: Record<string, string>, logs: string, o: EmbeddedStackOptions, onLine?: (line: string) => void): void {
    const child = spawn(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(join(logs, `${name}.log`), { flags: 'a' });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        log.write(`${line}\n`);
        onLine?.(line);
        if (o.verbose) (o.status ?? process.stderr).write(`${name.padEnd(9)}| ${line}\n`);
      });
    }
    const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
    this.#services.push({ name, child, log, exited });
  }

  /** Rejects when a service exits before the stack is ready. */
  async #firstExit(): Promise<string | undefined> {
    const dead = this.#services.find((s) => s.child.exitCode !== null);
    return dead ? `${dead.name} exited with code ${dead.child.exitCode}; see ${dead.name}.log` : undefined;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, message: string, fatal?: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    const dead = await fatal?.();
    if (dead) throw new Error(dead);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(message);
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function pingRedis(port: number): Promise<boolean> {
  const { Socket } = await import('node:net');
  return new Promise((resolvePing) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePing(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

function assertCommand(command: string, install: string): void {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).status === 0;
  if (!found && !existsSync(command)) throw new Error(`${command} is not installed; install it with: ${install}`);
}
