import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { GembatchError } from '@gembatch/contracts';
import { cancelledError } from '../util/abort.ts';
import type {
  OpenRequest,
  PdfOpenResult,
  PdfRequest,
  PdfResultByOp,
  PdfWorkerEnvelope,
  PdfWorkerReply,
  SerializedPdfError,
} from './pdf-worker-protocol.ts';

/** Thrown (and only thrown) for failures inside pdf.js: the caller classifies them by name and code. */
export class PdfJsError extends Error {
  readonly pdfName: string;
  readonly pdfCode: number | undefined;
  constructor(serialized: SerializedPdfError) {
    super(serialized.message);
    this.name = 'PdfJsError';
    this.pdfName = serialized.name;
    this.pdfCode = serialized.code;
  }
}

/** Options of `PdfWorkerClient.open`. */
export interface PdfWorkerOptions {
  path: string;
  /** User password. Defaults to none. */
  password?: string;
  /** Pixel cap for images decoded inside the PDF. */
  maxImagePixels: number;
  /** Terminates the worker when it fires (`GB_ERR_CANCELLED`). Defaults to none. */
  signal?: AbortSignal;
  /** Time limit for opening the document, in ms. Defaults to 60,000. */
  openTimeoutMs?: number;
  /** Heap limit of the worker in MiB; exceeding it ends the worker, not the process. Defaults to 2048. */
  maxHeapMb?: number;
}

// Why 60 s: opening reads the cross-reference table and catalog only; even 100 MB files open in seconds.
const DEFAULT_OPEN_TIMEOUT_MS = 60_000;
// Why 2 GiB: room for pdf.js's decoded images on a 600-dpi page while a hostile file cannot take the node down.
const DEFAULT_MAX_HEAP_MB = 2048;
const READY_ID = 0;

const require = createRequire(import.meta.url);
const entryUrl = new URL('./pdf-worker.ts', import.meta.url).href;
const runsFromTypeScript = entryUrl.endsWith('.ts');

/**
 * Bootstrap for the worker: pdf.js is imported natively first (fast), then, when this package
 * runs from TypeScript sources, tsx is registered so the worker's own `.ts` modules load.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  for (const url of workerData.preload) await import(url);
  if (workerData.tsxApi) (await import(workerData.tsxApi)).register();
  await import(workerData.entry);
})().catch((error) => { setImmediate(() => { throw error; }); });
`;

function bootstrapData(): { preload: string[]; tsxApi: string | null; entry: string } {
  const fileUrl = (specifier: string) => pathToFileURL(require.resolve(specifier)).href;
  // The CommonJS entry of tsx's API sits next to the ESM one; `import()` needs the ESM file.
  const tsxApi =
    runsFromTypeScript && !(process.features as { typescript?: unknown }).typescript
      ? fileUrl('tsx/esm/api').replace(/\.cjs$/, '.mjs')
      : null;
  return {
    preload: [fileUrl('pdfjs-dist/legacy/build/pdf.mjs'), fileUrl('pdfjs-dist/legacy/build/pdf.worker.mjs')],
    tsxApi,
    entry: entryUrl,
  };
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One pdf.js document open in a worker thread, with a time limit on every call. A call that runs
 * past its limit, a crash or an out-of-memory end the worker; `restart()` opens the document again
 * in a fresh worker so the remaining pages can still be read. `close()` is idempotent.
 */
export class PdfWorkerClient {
  readonly #options: PdfWorkerOptions;
  #worker: Worker | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #onAbort = () => {
    void this.#terminate(cancelledError());
  };

  private constructor(options: PdfWorkerOptions) {
    this.#options = options;
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Starts a worker and opens the document in it. pdf.js failures reject with `PdfJsError`. */
  static async open(options: PdfWorkerOptions): Promise<{ client: PdfWorkerClient; info: PdfOpenResult }> {
    if (options.signal?.aborted) throw cancelledError();
    const client = new PdfWorkerClient(options);
    try {
      const info = await client.#start();
      return { client, info };
    } catch (error) {
      await client.close();
      throw error;
    }
  }

  /** Sends one request; rejects with `PdfJsError` (pdf.js failed), `GB_ERR_TIMEOUT` (worker ended) or `GB_ERR_CANCELLED`. */
  call<Op extends PdfRequest['op']>(
    request: Extract<PdfRequest, { op: Op }>,
    timeoutMs: number,
  ): Promise<PdfResultByOp[Op]> {
    const worker = this.#worker;
    if (this.#closed || !worker)
      return Promise.reject(new GembatchError('GB_ERR_INTERNAL', 'the PDF worker is not running'));
    const id = this.#nextId++;
    const reply = this.#expect(id, timeoutMs, `PDF ${request.op}`);
    const envelope: PdfWorkerEnvelope = { id, request };
    worker.postMessage(envelope);
    return reply as Promise<PdfResultByOp[Op]>;
  }

  /** Ends the current worker (if any) and opens the document again in a new one. */
  async restart(): Promise<void> {
    if (this.#closed) throw cancelledError();
    await this.#terminate(new GembatchError('GB_ERR_INTERNAL', 'the PDF worker was restarted'));
    await this.#start();
  }

  /** Ends the worker and rejects anything still pending. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    await this.#terminate(new GembatchError('GB_ERR_INTERNAL', 'the PDF worker was closed'));
  }

  /** Registers a reply we wait for; a reply that does not come in time ends the worker. */
  #expect(id: number, timeoutMs: number, what: string): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        void this.#terminate(new GembatchError('GB_ERR_TIMEOUT', `${what} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
    });
  }

  async #start(): Promise<PdfOpenResult> {
    const openTimeoutMs = this.#options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    // The ready handshake is reply 0: the bootstrap posts it once pdf.js and the entry module are loaded.
    const ready = this.#expect(READY_ID, openTimeoutMs, 'starting the PDF worker');
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: bootstrapData(),
      resourceLimits: { maxOldGenerationSizeMb: this.#options.maxHeapMb ?? DEFAULT_MAX_HEAP_MB },
      // pdf.js may print parser messages; they are captured and dropped so nothing about a document reaches the logs.
      stdout: true,
      stderr: true,
    });
    worker.stdout.resume();
    worker.stderr.resume();
    this.#worker = worker;
    let started = false;
    worker.on('message', (message: PdfWorkerReply | { ready: true }) => {
      const id = 'id' in message ? message.id : READY_ID;
      const pending = this.#pending.get(id);
      if (!pending) return;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      if (!('id' in message)) {
        started = true;
        pending.resolve(undefined);
      } else if (message.ok) {
        pending.resolve(message.result);
      } else {
        pending.reject(new PdfJsError(message.error));
      }
    });
    worker.on('error', (error: Error & { code?: string }) => {
      let reason: GembatchError;
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY')
        reason = new GembatchError('GB_ERR_PDF_TOO_LARGE', 'the PDF needs more memory than a PDF worker may use');
      else if (!started)
        reason = new GembatchError('GB_ERR_INTERNAL', `the PDF worker could not start: ${error.message}`, {
          cause: error,
        });
      else
        reason = new GembatchError('GB_ERR_PDF_INVALID', `the PDF parser crashed: ${error.message}`, { cause: error });
      void this.#terminate(reason);
    });
    worker.on('exit', () => {
      if (this.#worker === worker)
        void this.#terminate(new GembatchError('GB_ERR_PDF_INVALID', 'the PDF worker exited unexpectedly'));
    });
    await ready;
    const open: OpenRequest = { op: 'open', path: this.#options.path, maxImagePixels: this.#options.maxImagePixels };
    if (this.#options.password !== undefined) open.password = this.#options.password;
    return this.call(open, openTimeoutMs);
  }

  async #terminate(reason: Error): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(reason);
      this.#pending.delete(id);
    }
    if (worker) await worker.terminate();
  }
}
