import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { childProcessEnv } from '@gembatch/config';
import { deserializeError, GembatchError, serializeError, type ExtractedDocument } from '@gembatch/contracts';
import type { ExtractOptions } from '../extract-file.ts';
import { cancelledError } from '../util/abort.ts';
import type { ChildExtractOptions, ChildToParent, ParentToChild } from './pool-protocol.ts';
import { processTreeRssBytes } from './process-tree-memory.ts';

/** Limits of one job in an extraction process. */
export interface ExtractionJobLimits {
  /** Kill the process after this many ms (`GB_ERR_EXTRACT_TIMEOUT`). */
  timeoutMs: number;
  /** Kill the process once its tree's resident memory exceeds this (`GB_ERR_EXTRACT_MEMORY`). */
  memoryLimitBytes: number;
  /** How often memory is sampled, in ms. */
  sampleIntervalMs: number;
}

/** Options of `ExtractionProcess.start`. */
export interface ExtractionProcessOptions {
  /** V8 heap cap of the process in MiB (its resident memory is capped separately by sampling). */
  maxHeapMb: number;
  /** How long starting may take, in ms. */
  startTimeoutMs: number;
}

// Why 4 KiB: the last lines of stderr are enough to tell a V8 out-of-memory abort from other crashes.
const STDERR_TAIL_CHARS = 4096;
const HEAP_OOM = /JavaScript heap out of memory|Reached heap limit|Allocation failed/;

const fromSource = import.meta.url.endsWith('.ts');
const entry = fileURLToPath(new URL(fromSource ? './extraction-child.ts' : './extraction-child.js', import.meta.url));
const tsxLoader = fromSource ? pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href : undefined;

interface RunningJob {
  id: number;
  resolve(document: ExtractedDocument): void;
  reject(error: Error): void;
  putBlob: ExtractOptions['putBlob'];
  /** Slices of the result's text received so far. */
  textChunks: string[];
  /** Why the process was killed, when this side killed it. */
  killedFor?: GembatchError;
}

/**
 * One extraction child process: forked with a minimal environment as the leader of its own
 * process group, it runs one `extractFile` at a time. While a job runs, the parent enforces a
 * deadline and samples the resident memory of the whole process tree; either limit, a cancel, or a
 * crash kills the group (the child and any pdftotext, tesseract or ffmpeg below it) and fails only
 * that job with a typed code. A killed or crashed process is never reused.
 */
export class ExtractionProcess {
  readonly #child: ChildProcess;
  #stderrTail = '';
  #job: RunningJob | undefined;
  #nextJob = 1;
  #jobsRun = 0;
  #exited = false;
  readonly #exitedPromise: Promise<void>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.stderr?.setEncoding('utf8');
    // stderr may echo document content: kept only as a short tail to classify crashes, never logged.
    child.stderr?.on('data', (chunk: string) => {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
    });
    child.on('message', (message: ChildToParent) => this.#onMessage(message));
    // Sending to a child that has just died emits 'error'; the exit handler settles the job.
    child.on('error', () => undefined);
    this.#exitedPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exited = true;
        this.#onExit(code, signal);
        resolve();
      });
    });
  }

  /** Forks a process and resolves once it is ready to take a job. */
  static async start(options: ExtractionProcessOptions): Promise<ExtractionProcess> {
    const child = fork(entry, [], {
      execArgv: [...(tsxLoader ? ['--import', tsxLoader] : []), `--max-old-space-size=${options.maxHeapMb}`],
      env: childProcessEnv(),
      // Its own process group: one kill reaches the tools it started.
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const started = new ExtractionProcess(child);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new GembatchError(
                'GB_ERR_SERVICE_UNAVAILABLE',
                `an extraction process did not start within ${options.startTimeoutMs} ms`,
              ),
            ),
          options.startTimeoutMs,
        );
        const onMessage = (message: ChildToParent) => {
          if (message.type !== 'ready') return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve();
        };
        child.on('message', onMessage);
        void started.#exitedPromise.then(() => {
          clearTimeout(timer);
          reject(
            new GembatchError(
              'GB_ERR_SERVICE_UNAVAILABLE',
              `an extraction process exited while starting (${child.signalCode ?? `code ${String(child.exitCode)}`})`,
            ),
          );
        });
      });
    } catch (error) {
      await started.kill();
      throw error;
    }
    return started;
  }

  /** The process id (its memory is the job's memory). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether it is gone (killed, crashed or closed). */
  get exited(): boolean {
    return this.#exited;
  }

  /** Whether a job is running. */
  get busy(): boolean {
    return this.#job !== undefined;
  }

  /** Jobs this process has finished. */
  get jobsRun(): number {
    return this.#jobsRun;
  }

  /** Resident memory of the process tree now, or `undefined` when it cannot be read. */
  rssBytes(): number | undefined {
    const pid = this.#child.pid;
    return pid === undefined || this.#exited ? undefined : processTreeRssBytes(pid);
  }

  /**
   * Runs one extraction. Rejects with the extraction's own `GembatchError`, or with
   * `GB_ERR_EXTRACT_TIMEOUT`, `GB_ERR_EXTRACT_MEMORY`, `GB_ERR_CANCELLED` or
   * `GB_ERR_EXTRACT_CRASHED` when the process had to die (it is then unusable).
   */
  run(options: ExtractOptions, limits: ExtractionJobLimits): Promise<ExtractedDocument> {
    if (this.#exited) return Promise.reject(new GembatchError('GB_ERR_INTERNAL', 'the extraction process is gone'));
    if (this.#job) return Promise.reject(new GembatchError('GB_ERR_INTERNAL', 'the extraction process is busy'));
    if (options.signal?.aborted) return Promise.reject(cancelledError());
    const id = this.#nextJob++;
    return new Promise<ExtractedDocument>((resolve, reject) => {
      const signal = options.signal;
      const stopFor = (reason: GembatchError) => {
        const job = this.#job;
        if (!job || job.id !== id || job.killedFor) return;
        job.killedFor = reason;
        void this.kill();
      };
      const deadline = setTimeout(
        () =>
          stopFor(
            new GembatchError(
              'GB_ERR_EXTRACT_TIMEOUT',
              `extraction ran past its deadline of ${Math.round(limits.timeoutMs / 1000)} s and was stopped`,
              { details: { timeoutMs: limits.timeoutMs } },
            ),
          ),
        limits.timeoutMs,
      );
      const sampler = setInterval(() => {
        const rss = this.rssBytes();
        if (rss !== undefined && rss > limits.memoryLimitBytes) {
          stopFor(
            new GembatchError(
              'GB_ERR_EXTRACT_MEMORY',
              `extraction needed more than ${formatMiB(limits.memoryLimitBytes)} of memory and was stopped`,
              { details: { rssBytes: rss, memoryLimitBytes: limits.memoryLimitBytes } },
            ),
          );
        }
      }, limits.sampleIntervalMs);
      const onAbort = () => stopFor(cancelledError());
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = () => {
        clearTimeout(deadline);
        clearInterval(sampler);
        signal?.removeEventListener('abort', onAbort);
        this.#job = undefined;
      };
      this.#job = {
        id,
        putBlob: options.putBlob,
        textChunks: [],
        resolve: (document) => {
          settle();
          this.#jobsRun++;
          resolve(document);
        },
        reject: (error) => {
          settle();
          this.#jobsRun++;
          reject(error);
        },
      };
      this.#send({ type: 'extract', job: id, options: childOptions(options) });
    });
  }

  /**
   * Kills the process group at once; resolves when the process has exited. A running job fails
   * with `reason` (default: `GB_ERR_EXTRACT_CRASHED`). Safe to call more than once.
   */
  async kill(reason?: GembatchError): Promise<void> {
    if (reason && this.#job && !this.#job.killedFor) this.#job.killedFor = reason;
    const pid = this.#child.pid;
    if (!this.#exited && pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // The group is already gone; kill the process itself in case it never became a leader.
        this.#child.kill('SIGKILL');
      }
    }
    await this.#exitedPromise;
  }

  #send(message: ParentToChild): void {
    if (this.#exited || !this.#child.connected) return;
    this.#child.send(message);
  }

  #onMessage(message: ChildToParent): void {
    const job = this.#job;
    if (message.type === 'ready' || !job || message.job !== job.id || job.killedFor) return;
    switch (message.type) {
      case 'put':
        job
          .putBlob(Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength), message.mime)
          .then(
            (sha256) => this.#send({ type: 'put-result', job: message.job, seq: message.seq, sha256 }),
            (error: unknown) =>
              this.#send({ type: 'put-failed', job: message.job, seq: message.seq, error: serializeError(error) }),
          );
        return;
      case 'text':
        job.textChunks.push(message.pieces.join(''));
        return;
      case 'done':
        job.resolve({ ...message.document, text: job.textChunks.join('') });
        return;
      case 'failed':
        job.reject(deserializeError(message.error));
        return;
    }
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const job = this.#job;
    if (!job) return;
    if (job.killedFor) {
      job.reject(job.killedFor);
      return;
    }
    if (HEAP_OOM.test(this.#stderrTail)) {
      job.reject(
        new GembatchError('GB_ERR_EXTRACT_MEMORY', 'extraction ran out of JavaScript heap in its extraction process'),
      );
      return;
    }
    const how = signal ?? `exit code ${String(code)}`;
    job.reject(
      new GembatchError('GB_ERR_EXTRACT_CRASHED', `the extraction process crashed on this file (${how})`, {
        details: { signal, exitCode: code },
      }),
    );
  }
}

function childOptions(options: ExtractOptions): ChildExtractOptions {
  return {
    path: options.path,
    ...(options.password === undefined ? {} : { password: options.password }),
    limits: { ...options.limits },
    scannedPages: options.scannedPages,
    visionAvailable: options.visionAvailable,
    ...(options.pdfTextEngine === undefined ? {} : { pdfTextEngine: options.pdfTextEngine }),
  };
}

function formatMiB(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}
