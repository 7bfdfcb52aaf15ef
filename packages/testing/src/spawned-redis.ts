import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { GembatchError } from '@gembatch/contracts';
import { findFreePort, findOnPath } from '@gembatch/config';
import { waitForRedisPing } from './redis-ping.ts';

/** Times a freshly picked port may turn out to be taken (another process won the race) before giving up. */
const PORT_ATTEMPTS = 3;
/** Grace time for a SIGTERM'd server to flush its AOF and exit before it gets SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Tail of the server's own log kept for error messages (Redis logs carry no stored data). */
const LOG_TAIL_CHARS = 4_000;
const HOST = '127.0.0.1';

export interface SpawnedRedisOptions {
  /** Turn on the append-only file, so data survives `restart()`. Defaults to `false`. */
  appendOnly?: boolean;
  /** Bound on waiting for the server's first PONG. Defaults to `15000`. */
  startTimeoutMs?: number;
  /** Environment whose `PATH` is searched for `redis-server`. Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** More `redis-server` arguments (`['--cluster-enabled', 'yes']`, `['--replicaof', host, port]`). Defaults to none. */
  extraArgs?: (port: number, dataDir: string) => string[];
  /** A config file name (in the data dir) written with this text and given first, as Sentinel needs one. Defaults to none. */
  configFile?: { name: string; text: (port: number) => string };
}

/** How a restart stops the server. */
export interface RestartOptions {
  /** SIGKILL instead of SIGTERM: a crash. With AOF, writes of the last second may be lost. Defaults to `false`. */
  hard?: boolean;
  /** Stay down this long (ms) before starting again: an outage clients must ride out. Spawned servers only. Defaults to `0`. */
  downMs?: number;
}

/** A `redis-server` child process on a free port with its own temporary data directory. */
export interface SpawnedRedis {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  restart(options?: RestartOptions): Promise<void>;
  close(): Promise<void>;
}

/** Every server this process started and has not stopped yet, killed if the process exits first. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLiveChildrenOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

/**
 * Finds `redis-server` on PATH, or throws `GB_ERR_CONFIG` naming how to install it.
 *
 * @param env Environment whose `PATH` is searched. Defaults to `process.env`.
 */
export async function findRedisServerBinary(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const found = findOnPath('redis-server', env);
  if (found) return found;
  throw new GembatchError(
    'GB_ERR_CONFIG',
    'redis-server is not on PATH and no REDIS_URL or Docker engine is available: install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_URL',
  );
}

/**
 * Starts `redis-server` on a free local port with a fresh temp dir (`--save ''`, AOF as asked),
 * waits for PING, and returns a handle. `close()` kills it and removes the dir; it is idempotent.
 */
export async function startSpawnedRedis(options: SpawnedRedisOptions = {}): Promise<SpawnedRedis> {
  const binary = await findRedisServerBinary(options.env);
  const dataDir = await mkdtemp(join(tmpdir(), 'gembatch-redis-'));
  killLiveChildrenOnExit();
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await findFreePort(HOST);
    try {
      const first = await launch(binary, port, dataDir, options);
      return new SpawnedRedisServer(binary, port, dataDir, options, first);
    } catch (error) {
      lastError = error;
      if (!(error instanceof AddressInUseError)) break;
    }
  }
  await rm(dataDir, { recursive: true, force: true });
  throw lastError;
}

class AddressInUseError extends Error {}

class SpawnedRedisServer implements SpawnedRedis {
  readonly url: string;
  #child: ChildProcess | undefined;
  #closing: Promise<void> | undefined;

  readonly #binary: string;
  readonly #options: SpawnedRedisOptions;

  constructor(
    binary: string,
    readonly port: number,
    readonly dataDir: string,
    options: SpawnedRedisOptions,
    child: ChildProcess,
  ) {
    this.#binary = binary;
    this.#options = options;
    this.url = `redis://${HOST}:${port}`;
    this.#child = child;
  }

  async restart(restartOptions: RestartOptions = {}): Promise<void> {
    if (this.#closing) throw new GembatchError('GB_ERR_CONFLICT', 'this Redis server is closed; start a new one');
    if (this.#child) await stop(this.#child, restartOptions.hard ? 'SIGKILL' : 'SIGTERM');
    this.#child = undefined;
    if (restartOptions.downMs) await delay(restartOptions.downMs);
    this.#child = await launch(this.#binary, this.port, this.dataDir, this.#options);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#child) await stop(this.#child, 'SIGTERM');
      this.#child = undefined;
      await rm(this.dataDir, { recursive: true, force: true });
    })();
    return this.#closing;
  }
}

async function launch(
  binary: string,
  port: number,
  dataDir: string,
  options: SpawnedRedisOptions,
): Promise<ChildProcess> {
  const config: string[] = [];
  if (options.configFile) {
    const path = join(dataDir, options.configFile.name);
    // Sentinel rewrites its config file; a restart keeps what it learned.
    await access(path).catch(() => writeFile(path, options.configFile?.text(port) ?? ''));
    config.push(path);
  }
  const args = [
    ...config,
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    options.appendOnly ? 'yes' : 'no',
    '--dir',
    dataDir,
    '--daemonize',
    'no',
    ...(options.extraArgs?.(port, dataDir) ?? []),
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  let log = '';
  const keepTail = (chunk: Buffer): void => {
    log = (log + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  const exited = new AbortController();
  child.once('exit', () => {
    liveChildren.delete(child);
    exited.abort();
  });
  child.once('error', () => exited.abort());
  try {
    await waitForRedisPing(HOST, port, { timeoutMs: options.startTimeoutMs ?? 15_000, signal: exited.signal });
    return child;
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) await stop(child, 'SIGKILL');
    if (/Address already in use/i.test(log)) throw new AddressInUseError(`port ${port} is taken`);
    throw new GembatchError(
      'GB_ERR_SERVICE_UNAVAILABLE',
      `redis-server on port ${port} did not start: ${exited.signal.aborted ? 'it exited' : 'no PONG'}; its log ends with:\n${log.trim()}`,
      {
        cause: error,
        details: { port },
      },
    );
  }
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await exit;
  } finally {
    clearTimeout(timer);
    liveChildren.delete(child);
  }
}
