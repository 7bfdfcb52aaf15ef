import { GembatchError, type ExtractedDocument } from '@gembatch/contracts';
import type { ExtractOptions } from '../extract-file.ts';
import { cancelledError } from '../util/abort.ts';
import { ExtractionProcess } from './extraction-process.ts';
import { usableCores } from './usable-cores.ts';

/** Options of `ExtractionPool`. */
export interface ExtractionPoolOptions {
  /** Extraction processes at most (jobs at once). Defaults to `defaultExtractionConcurrency()`: cores − 1, at least 1. */
  size?: number;
  /** Deadline of one job, in ms (`GB_ERR_EXTRACT_TIMEOUT`). Defaults to 1,800,000 (30 min). */
  timeoutMs?: number;
  /** Resident memory one job's process tree may use, in bytes (`GB_ERR_EXTRACT_MEMORY`). Defaults to 2 GiB. */
  memoryLimitBytes?: number;
  /** How often a busy process's memory is sampled, in ms. Defaults to `50`. */
  sampleIntervalMs?: number;
  /** A process is replaced after this many jobs (slow leaks in native libraries). Defaults to `100`. */
  maxJobsPerProcess?: number;
  /** How long starting a process may take, in ms. Defaults to `60_000`. */
  startTimeoutMs?: number;
}

/** Counters of an `ExtractionPool` (for metrics and tests). */
export interface ExtractionPoolStats {
  /** Processes alive now. */
  processes: number;
  /** Jobs running now. */
  busy: number;
  /** Jobs waiting for a process. */
  queued: number;
  /** Processes started since the pool was created. */
  started: number;
  /** Jobs ended by a kill or crash, by reason. */
  timeouts: number;
  memoryKills: number;
  crashes: number;
  cancelled: number;
}

// Why 30 minutes: a 2,000-page scan OCRs at 2–8 s a page on two tesseracts; only a hostile or
// pathological file needs longer, and the deadline exists so that one cannot hold a process forever.
const DEFAULT_TIMEOUT_MS = 30 * 60_000;
// Why 2 GiB: a 600-dpi A3 render (~280 MB RGBA) with pdf.js's caches and a tesseract fits several
// times over; the 1.5 MB image-bomb PDF that drove a worker to 2.7–6.8 GB is stopped well before.
const DEFAULT_MEMORY_LIMIT_BYTES = 2 * 1024 ** 3;
// Why 50 ms: memory is touched at a few GB/s at most, so a job overshoots its limit by a few hundred
// megabytes before the kill; each sample is a handful of procfs reads (microseconds).
const DEFAULT_SAMPLE_INTERVAL_MS = 50;
// Why 100: a fresh process costs ~0.5 s of CPU; 100 jobs amortise it while capping slow native leaks.
const DEFAULT_MAX_JOBS_PER_PROCESS = 100;
// Why 60 s: a cold start loads sharp, pdf.js and the TypeScript loader; seconds normally, more under contention.
const DEFAULT_START_TIMEOUT_MS = 60_000;

/**
 * The default pool size on a node: every usable core but one (the engine and the event loop keep
 * one), at least 1. Usable cores respect a container's CPU quota, not only the host's core count.
 */
export function defaultExtractionConcurrency(): number {
  return Math.max(1, usableCores() - 1);
}

interface QueuedJob {
  options: ExtractOptions;
  resolve(document: ExtractedDocument): void;
  reject(error: Error): void;
  onAbort?: () => void;
}

/**
 * A pool of extraction processes. `extract` takes the same options as `extractFile` and runs it
 * in a child process, so no user-controlled parsing (pdf.js, DOCX/HTML/RTF normalisers, sharp,
 * the audio segmenter) runs on the caller's event loop or in its memory. Each job has a deadline
 * and a memory limit on the resident memory of its whole process tree — not V8's heap limit,
 * which pdf.js's decode buffers escape. A job that hits a limit, is cancelled or crashes its
 * process fails alone with a typed, non-retryable code (`GB_ERR_EXTRACT_TIMEOUT`,
 * `GB_ERR_EXTRACT_MEMORY`, `GB_ERR_CANCELLED`, `GB_ERR_EXTRACT_CRASHED`); the process is
 * replaced and the pool goes on. Processes start on demand and are reused; one whose memory stayed
 * above half the limit after a job is replaced. `close()` is idempotent.
 */
export class ExtractionPool {
  readonly size: number;
  readonly #timeoutMs: number;
  readonly #memoryLimitBytes: number;
  readonly #sampleIntervalMs: number;
  readonly #maxJobsPerProcess: number;
  readonly #startTimeoutMs: number;
  readonly #idle: ExtractionProcess[] = [];
  readonly #all = new Set<ExtractionProcess>();
  readonly #queue: QueuedJob[] = [];
  #starting = 0;
  #closed = false;
  readonly #stats = { started: 0, timeouts: 0, memoryKills: 0, crashes: 0, cancelled: 0 };

  constructor(options: ExtractionPoolOptions = {}) {
    this.size = Math.floor(options.size ?? defaultExtractionConcurrency());
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#memoryLimitBytes = options.memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT_BYTES;
    this.#sampleIntervalMs = options.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
    this.#maxJobsPerProcess = options.maxJobsPerProcess ?? DEFAULT_MAX_JOBS_PER_PROCESS;
    this.#startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    for (const [name, value] of Object.entries({
      size: this.size,
      timeoutMs: this.#timeoutMs,
      memoryLimitBytes: this.#memoryLimitBytes,
      sampleIntervalMs: this.#sampleIntervalMs,
      maxJobsPerProcess: this.#maxJobsPerProcess,
    })) {
      if (!Number.isFinite(value) || value < 1)
        throw new GembatchError('GB_ERR_CONFIG', `ExtractionPool ${name} must be a positive number`);
    }
  }

  /** Extracts a file in a pool process: `extractFile`'s contract, plus the pool's limits. */
  extract(options: ExtractOptions): Promise<ExtractedDocument> {
    if (this.#closed)
      return Promise.reject(new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the extraction pool is closed'));
    if (options.signal?.aborted) return Promise.reject(cancelledError());
    return new Promise<ExtractedDocument>((resolve, reject) => {
      const job: QueuedJob = { options, resolve, reject };
      if (options.signal) {
        const signal = options.signal;
        job.onAbort = () => {
          const index = this.#queue.indexOf(job);
          if (index < 0) return;
          this.#queue.splice(index, 1);
          this.#stats.cancelled++;
          reject(cancelledError());
        };
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.#queue.push(job);
      this.#pump();
    });
  }

  /** Process ids of the live processes (tests read their environment and kill them). */
  processIds(): number[] {
    return [...this.#all].map((p) => p.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** Process ids of the processes running a job now. */
  busyProcessIds(): number[] {
    return [...this.#all]
      .filter((p) => p.busy)
      .map((p) => p.pid)
      .filter((pid): pid is number => pid !== undefined);
  }

  /** Resident memory of every live process tree together, in bytes (0 where it cannot be read). */
  rssBytes(): number {
    let total = 0;
    for (const p of this.#all) total += p.rssBytes() ?? 0;
    return total;
  }

  stats(): ExtractionPoolStats {
    const busy = [...this.#all].filter((p) => p.busy).length;
    return { processes: this.#all.size, busy, queued: this.#queue.length, ...this.#stats };
  }

  /**
   * Kills every process; queued and running jobs fail with a retryable
   * `GB_ERR_SERVICE_UNAVAILABLE` (another node can take them). Idempotent.
   */
  async close(): Promise<void> {
    const closed = new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the extraction pool was closed');
    this.#closed = true;
    for (const job of this.#queue.splice(0)) {
      if (job.onAbort) job.options.signal?.removeEventListener('abort', job.onAbort);
      job.reject(closed);
    }
    const processes = [...this.#all];
    this.#all.clear();
    this.#idle.length = 0;
    await Promise.all(processes.map((p) => p.kill(closed)));
  }

  #pump(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const idle = this.#idle.pop();
      if (idle?.exited) {
        // Died while idle (killed from outside, or out of memory elsewhere): replace it.
        this.#all.delete(idle);
        continue;
      }
      if (idle) {
        this.#dispatch(idle, this.#queue.shift()!);
        continue;
      }
      if (this.#all.size + this.#starting >= this.size || this.#starting >= this.#queue.length) return;
      this.#startProcess();
    }
  }

  #startProcess(): void {
    this.#starting++;
    ExtractionProcess.start({
      maxHeapMb: Math.max(256, Math.floor(this.#memoryLimitBytes / 1024 / 1024)),
      startTimeoutMs: this.#startTimeoutMs,
    }).then(
      (started) => {
        this.#starting--;
        this.#stats.started++;
        if (this.#closed) {
          void started.kill();
          return;
        }
        this.#all.add(started);
        this.#idle.push(started);
        this.#pump();
      },
      (error: unknown) => {
        this.#starting--;
        // Nothing can run without a process: fail one waiting job (retryable) rather than spin on starts.
        const job = this.#queue.shift();
        if (job) {
          if (job.onAbort) job.options.signal?.removeEventListener('abort', job.onAbort);
          job.reject(error instanceof Error ? error : new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', String(error)));
        }
        this.#pump();
      },
    );
  }

  #dispatch(worker: ExtractionProcess, job: QueuedJob): void {
    if (job.onAbort) job.options.signal?.removeEventListener('abort', job.onAbort);
    worker
      .run(job.options, {
        timeoutMs: this.#timeoutMs,
        memoryLimitBytes: this.#memoryLimitBytes,
        sampleIntervalMs: this.#sampleIntervalMs,
      })
      .then(
        (document) => {
          this.#release(worker);
          job.resolve(document);
        },
        (error: unknown) => {
          this.#count(error);
          this.#release(worker);
          job.reject(error instanceof Error ? error : new GembatchError('GB_ERR_INTERNAL', String(error)));
        },
      );
  }

  #count(error: unknown): void {
    if (!(error instanceof GembatchError)) return;
    if (error.code === 'GB_ERR_EXTRACT_TIMEOUT') this.#stats.timeouts++;
    else if (error.code === 'GB_ERR_EXTRACT_MEMORY') this.#stats.memoryKills++;
    else if (error.code === 'GB_ERR_EXTRACT_CRASHED') this.#stats.crashes++;
    else if (error.code === 'GB_ERR_CANCELLED') this.#stats.cancelled++;
  }

  /** Back to the idle list, or replaced when it died, ran its quota, or kept too much memory. */
  #release(worker: ExtractionProcess): void {
    const keep =
      !this.#closed &&
      !worker.exited &&
      worker.jobsRun < this.#maxJobsPerProcess &&
      (worker.rssBytes() ?? 0) <= this.#memoryLimitBytes / 2;
    if (keep) {
      this.#idle.push(worker);
    } else {
      this.#all.delete(worker);
      void worker.kill();
    }
    this.#pump();
  }
}
