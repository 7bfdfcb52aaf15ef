import { Worker } from 'node:worker_threads';
import { Histogram, type Registry } from 'prom-client';
import { GembatchError } from '@gembatch/contracts';
import type { Logger } from './logger.ts';
import { PROCESS_FAMILIES } from './metrics-catalog.ts';

/** Why 20 ms: fine enough for a 200 ms p99 budget, and 50 wake-ups a second cost nothing measurable. */
const SAMPLE_INTERVAL_MS = 20;
/** Why 5 s: no gembatch code should hold the loop that long; liveness probes then fail well within 10 s of a block. */
export const DEFAULT_STALL_THRESHOLD_MS = 5_000;

export interface EventLoopWatchdogOptions {
  /** Registry the `gembatch_event_loop_lag_seconds` histogram is added to. Defaults to none (add it later with `register`). */
  registry?: Registry;
  /**
   * Serve `GET /livez` from a worker thread on this port: 200 while the main loop ticks, 503 once
   * it has not ticked for `stallThresholdMs`. `0` picks a free port; unset serves nothing.
   */
  livezPort?: number;
  /** Interface of `/livez`. Defaults to `127.0.0.1`. */
  livezHost?: string;
  /** How long the loop may go without a tick before `/livez` fails. Defaults to `DEFAULT_STALL_THRESHOLD_MS`. */
  stallThresholdMs?: number;
  /** Logs when `/livez` cannot start. Defaults to none. */
  logger?: Logger;
  /**
   * A stuck engine with a live loop: `/livez` also fails once `sample()` has reported active work
   * (`active > 0`) with an unchanged `progress` counter for `stallThresholdMs` (a hung GPU, a decode
   * that never returns). Defaults to none (only the loop is watched).
   */
  progress?: ProgressWatch;
}

/** What the watchdog samples to tell a working engine from a stuck one. */
export interface ProgressWatch {
  /** Work in hand (e.g. active sequences) and a counter that grows while it advances (e.g. decode calls). Must be cheap. */
  sample: () => { active: number; progress: number };
  /** How long active work may go without progress before `/livez` fails. */
  stallThresholdMs: number;
}

/** Why every 25th tick (500 ms): progress is judged in seconds; sampling the engine 50 times a second would only cost. */
const PROGRESS_EVERY_TICKS = 25;

/**
 * The liveness thread. It reads the heartbeat the main thread writes into shared memory, so it
 * answers even while the main thread is frozen (which is the point: a probe served by the frozen
 * loop could only time out, and could never say for how long it has been stuck).
 */
const LIVEZ_THREAD = `
const { createServer } = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const heartbeat = new BigInt64Array(workerData.heartbeat);
const server = createServer((request, response) => {
  const path = (request.url || '/').split('?')[0];
  if (path !== '/livez') {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found; liveness is at /livez\\n');
    return;
  }
  const now = Date.now();
  const stalledMs = Math.max(0, now - Number(Atomics.load(heartbeat, 0)));
  const loopOk = stalledMs < workerData.stallThresholdMs;
  // Slot 1: when the engine last was idle or advanced (written by the main loop; checked only when watched).
  // Slot 2: the engine threshold (0 while no engine is watched).
  const engineThresholdMs = Number(Atomics.load(heartbeat, 2));
  const engineStalledMs = engineThresholdMs > 0 ? Math.max(0, now - Number(Atomics.load(heartbeat, 1))) : 0;
  const engineOk = engineThresholdMs === 0 || engineStalledMs < engineThresholdMs;
  const ok = loopOk && engineOk;
  response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  const body = { status: ok ? 'ok' : loopOk ? 'engine_stalled' : 'stalled', event_loop_stalled_ms: stalledMs, threshold_ms: workerData.stallThresholdMs };
  if (engineThresholdMs > 0) Object.assign(body, { engine_stalled_ms: engineStalledMs, engine_threshold_ms: engineThresholdMs });
  response.end(JSON.stringify(body) + '\\n');
});
server.keepAliveTimeout = 5000;
server.on('error', (error) => parentPort.postMessage({ error: error.code || error.message }));
server.listen(workerData.port, workerData.host, () => parentPort.postMessage({ port: server.address().port }));
parentPort.on('message', (message) => {
  if (message === 'close') { server.close(() => process.exit(0)); server.closeAllConnections(); }
});
`;

/**
 * Watches this process's event loop. A 20 ms timer records how late it fires into
 * `gembatch_event_loop_lag_seconds` and writes a heartbeat into a SharedArrayBuffer; a worker
 * thread serves `/livez` from that heartbeat, failing (503, with how long the loop has been stuck)
 * while the main thread is blocked — by a parser, a regex, a synchronous decode. Separate from
 * readiness: a node that is loading its model is alive but not ready; a frozen one is neither.
 */
export class EventLoopWatchdog {
  readonly #histogram: Histogram;
  /** Slot 0: the loop's last tick; slot 1: when the watched engine was last idle or advancing (epoch ms); slot 2: its threshold (ms, 0 = none). */
  readonly #heartbeat = new BigInt64Array(new SharedArrayBuffer(24));
  #progress: ProgressWatch | undefined;
  readonly #timer: NodeJS.Timeout;
  #thread: Worker | undefined;
  #livezUrl: string | undefined;
  #closing: Promise<void> | undefined;

  private constructor(registry: Registry | undefined, progress: ProgressWatch | undefined) {
    this.#histogram = new Histogram({
      name: PROCESS_FAMILIES.eventLoopLag.name,
      help: PROCESS_FAMILIES.eventLoopLag.help,
      buckets: [...PROCESS_FAMILIES.eventLoopLag.buckets],
      registers: registry ? [registry] : [],
    });
    Atomics.store(this.#heartbeat, 0, BigInt(Date.now()));
    if (progress) this.watchProgress(progress);
    let last = performance.now();
    let ticks = 0;
    let lastProgress: number | undefined;
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.#histogram.observe(Math.max(0, now - last - SAMPLE_INTERVAL_MS) / 1000);
      last = now;
      Atomics.store(this.#heartbeat, 0, BigInt(Date.now()));
      const watched = this.#progress;
      if (watched && ++ticks % PROGRESS_EVERY_TICKS === 0) {
        const { active, progress: counter } = watched.sample();
        // Idle, or advanced since the last sample: the engine is fine now.
        if (active === 0 || counter !== lastProgress) Atomics.store(this.#heartbeat, 1, BigInt(Date.now()));
        lastProgress = counter;
      }
    }, SAMPLE_INTERVAL_MS);
    // The watchdog never keeps a process alive on its own.
    this.#timer.unref();
  }

  /** Starts sampling, and the `/livez` thread when `livezPort` is given (rejects with `GB_ERR_CONFIG` if it cannot listen). */
  static async start(options: EventLoopWatchdogOptions = {}): Promise<EventLoopWatchdog> {
    const watchdog = new EventLoopWatchdog(options.registry, options.progress);
    if (options.livezPort !== undefined) {
      try {
        await watchdog.#startLivez(
          options.livezPort,
          options.livezHost ?? '127.0.0.1',
          options.stallThresholdMs ?? DEFAULT_STALL_THRESHOLD_MS,
        );
      } catch (error) {
        await watchdog.close();
        options.logger?.error({ code: 'GB_ERR_CONFIG', port: options.livezPort }, 'liveness endpoint cannot start');
        throw error;
      }
    }
    return watchdog;
  }

  /**
   * Starts watching an engine's progress (see {@link EventLoopWatchdogOptions.progress}); for
   * engines that exist only after the watchdog started (a worker loads its model after `/livez` is up).
   */
  watchProgress(progress: ProgressWatch): void {
    Atomics.store(this.#heartbeat, 1, BigInt(Date.now()));
    this.#progress = progress;
    Atomics.store(this.#heartbeat, 2, BigInt(Math.max(1, Math.round(progress.stallThresholdMs))));
  }

  /** Adds the lag histogram to another registry (e.g. one created after the watchdog started). */
  register(registry: Registry): void {
    if (!registry.getSingleMetric(PROCESS_FAMILIES.eventLoopLag.name)) registry.registerMetric(this.#histogram);
  }

  /** URL of `/livez`, when served. */
  get livezUrl(): string | undefined {
    return this.#livezUrl;
  }

  async #startLivez(port: number, host: string, stallThresholdMs: number): Promise<void> {
    const thread = new Worker(LIVEZ_THREAD, {
      eval: true,
      workerData: { heartbeat: this.#heartbeat.buffer, port, host, stallThresholdMs },
    });
    this.#thread = thread;
    // The liveness thread must not keep the process alive either.
    thread.unref();
    const bound = await new Promise<number>((resolve, reject) => {
      thread.once('message', (message: { port?: number; error?: string }) => {
        if (message.port !== undefined) resolve(message.port);
        else
          reject(
            new GembatchError(
              'GB_ERR_CONFIG',
              message.error === 'EADDRINUSE'
                ? `liveness port ${port} on ${host} is already in use`
                : `liveness endpoint cannot listen on ${host}:${port} (${message.error ?? 'unknown'})`,
            ),
          );
      });
      thread.once('error', (error) =>
        reject(new GembatchError('GB_ERR_CONFIG', `liveness thread failed: ${error.message}`, { cause: error })),
      );
    });
    const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    this.#livezUrl = `http://${urlHost}:${bound}/livez`;
  }

  /** Stops sampling and the `/livez` thread. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      const thread = this.#thread;
      if (!thread) return;
      const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
      thread.postMessage('close');
      // A thread that does not stop in time is terminated: close() must always finish.
      const timer = setTimeout(() => void thread.terminate(), 2_000);
      await exited;
      clearTimeout(timer);
    })();
    return this.#closing;
  }
}

/** Starts an `EventLoopWatchdog` (see its options). */
export function startEventLoopWatchdog(options: EventLoopWatchdogOptions = {}): Promise<EventLoopWatchdog> {
  return EventLoopWatchdog.start(options);
}
