import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { childProcessEnv } from '@gembatch/config';
import { deserializeError, GembatchError, errorMessage } from '@gembatch/contracts';
import type { Logger } from '@gembatch/telemetry';
import type { HostInitOptions, HostMessage, HostReadyInfo, ParentMessage } from './host-protocol.ts';
import { NativeOutputSink } from './native-output.ts';

/** Messages the parent sends that answer to an id. */
export type RequestMessage = Extract<ParentMessage, { id: number }>;

interface OpenRequest {
  onMessage: (message: HostMessage) => void;
  onExit: (error: GembatchError) => void;
}

export interface HostProcessOptions {
  logger: Logger;
  /** Forward llama.cpp's structural log lines to `logger` at debug. Defaults to `false`. */
  nativeLog?: boolean;
  /** How long loading may take before the start fails. Defaults to `600_000` ms. */
  startTimeoutMs?: number;
}

/**
 * What the engine host may see of this process's environment besides `childProcessEnv`'s base:
 * accelerator selection and llama.cpp's own switches. Never `REDIS_URL`, `HF_TOKEN` or API keys:
 * the host parses model files and user media.
 */
const HOST_ENV = {
  allow: [
    'CUDA_VISIBLE_DEVICES',
    'CUDA_DEVICE_ORDER',
    'HIP_VISIBLE_DEVICES',
    'ROCR_VISIBLE_DEVICES',
    'GPU_DEVICE_ORDINAL',
    'NVIDIA_VISIBLE_DEVICES',
    'VK_ICD_FILENAMES',
    'OMP_NUM_THREADS',
  ],
  allowPrefixes: ['GGML_', 'LLAMA_'],
};

/** A 24 GB BF16 GGUF read from a cold disk at ~100 MB/s takes about four minutes. */
const DEFAULT_START_TIMEOUT_MS = 600_000;

/**
 * The engine host child process (see `engine-host.ts`), seen from the engine: starts it with a
 * TypeScript loader, routes its output through a `NativeOutputSink` (never to this process's
 * stdout), sends requests and hands each reply to whoever opened that request id. When the
 * child dies unexpectedly every open request fails with a retryable `GB_ERR_INFERENCE`.
 */
export class HostProcess {
  #nextId = 1;
  readonly #open = new Map<number, OpenRequest>();
  /** Set once an exit is expected (close asked for, or the start failed). */
  #closeRequested = false;
  #exitError: GembatchError | undefined;
  readonly #exited: Promise<void>;
  #unexpectedExitListener: ((error: GembatchError) => void) | undefined;

  readonly #child: ChildProcess;
  readonly #sink: NativeOutputSink;
  readonly #logger: Logger;

  private constructor(child: ChildProcess, sink: NativeOutputSink, logger: Logger) {
    this.#child = child;
    this.#sink = sink;
    this.#logger = logger;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#onExit(code, signal);
        resolve();
      });
    });
    child.on('message', (message: HostMessage) => this.#route(message));
    // Sending to a child that just died raises 'error' on the child object; the exit handler reports it.
    child.on('error', (error) => this.#logger.warn({ err: error.message }, 'llama.node engine host process error'));
  }

  /** Starts the host, loads the model and projector, and resolves once they are ready. */
  static async start(
    init: HostInitOptions,
    options: HostProcessOptions,
  ): Promise<{ host: HostProcess; info: HostReadyInfo }> {
    // Sources run through tsx (the repo's packages export TypeScript); a compiled build forks the .js twin.
    const fromSource = import.meta.url.endsWith('.ts');
    const entry = fileURLToPath(new URL(fromSource ? './engine-host.ts' : './engine-host.js', import.meta.url));
    const execArgv = fromSource ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [];
    const child = fork(entry, [], {
      execArgv,
      env: childProcessEnv(HOST_ENV),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const sink = new NativeOutputSink(options.logger, options.nativeLog ?? false);
    if (child.stdout) sink.attach(child.stdout, 'stdout');
    if (child.stderr) sink.attach(child.stderr, 'stderr');
    const host = new HostProcess(child, sink, options.logger);
    let cleanup = () => {};
    const ready = new Promise<HostReadyInfo>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new GembatchError(
            'GB_ERR_MODEL_LOAD',
            `the engine host did not become ready within ${options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms`,
          ),
        );
      }, options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
      const onMessage = (message: HostMessage) => {
        if (message.type === 'ready') resolve(message.info);
        else if (message.type === 'init-failed') {
          host.#closeRequested = true;
          reject(deserializeError(message.failure));
        }
      };
      child.on('message', onMessage);
      child.once('error', (error) =>
        reject(
          new GembatchError('GB_ERR_MODEL_LOAD', `the engine host could not be started: ${error.message}`, {
            cause: error,
          }),
        ),
      );
      child.once('exit', (code, signal) => {
        reject(
          new GembatchError(
            'GB_ERR_MODEL_LOAD',
            `the engine host exited while loading (${signal ?? `code ${code}`}); the model or projector file may be damaged or unsupported by this llama.cpp build`,
            { details: { crash: sink.crashLines() } },
          ),
        );
      });
      cleanup = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
      };
    });
    void ready.then(cleanup, cleanup);
    host.send({ type: 'init', options: init });
    try {
      return { host, info: await ready };
    } catch (error) {
      await host.close(5_000);
      throw error;
    }
  }

  /** Process id of the host (its memory is the model's memory). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether the host is gone (closed or crashed). */
  get isExited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  /** Called once if the host dies without being asked to. */
  onUnexpectedExit(listener: (error: GembatchError) => void): void {
    this.#unexpectedExitListener = listener;
  }

  /**
   * Sends a request under a fresh id; every reply for that id goes to `onMessage` until
   * `release(id)`. If the host dies first, `onExit` gets the error instead. Returns the id.
   */
  request(
    build: (id: number) => RequestMessage,
    onMessage: (message: HostMessage) => void,
    onExit: (error: GembatchError) => void,
  ): number {
    const id = this.#nextId;
    this.#nextId += 1;
    if (this.#exitError || this.isExited) {
      queueMicrotask(() =>
        onExit(
          this.#exitError ??
            new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'the llama.node engine host is not running'),
        ),
      );
      return id;
    }
    this.#open.set(id, { onMessage, onExit });
    this.send(build(id));
    return id;
  }

  /** Stops routing replies for `id`. */
  release(id: number): void {
    this.#open.delete(id);
  }

  /** Sends a message that expects no reply (e.g. `cancel`). Ignored once the host is gone. */
  send(message: ParentMessage): void {
    if (!this.#child.connected) return;
    try {
      this.#child.send(message);
    } catch (error) {
      this.#logger.warn({ err: errorMessage(error) }, 'could not message the llama.node engine host');
    }
  }

  /** Asks the host to release the model and exit; kills it after `timeoutMs`. Idempotent. */
  async close(timeoutMs: number): Promise<void> {
    this.#closeRequested = true;
    if (this.isExited) return;
    this.send({ type: 'close' });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([this.#exited.then(() => 'exited' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout' && !this.isExited) {
      this.#logger.warn({ timeoutMs }, 'llama.node engine host did not exit in time; killing it');
      this.#child.kill('SIGKILL');
      await once(this.#child, 'exit').catch(() => undefined);
    }
  }

  #route(message: HostMessage): void {
    if (!('id' in message)) return;
    this.#open.get(message.id)?.onMessage(message);
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const expected = this.#closeRequested && (code === 0 || signal === 'SIGKILL');
    const error = new GembatchError(
      'GB_ERR_INFERENCE',
      `the llama.node engine process exited (${signal ?? `code ${code}`})${expected ? '' : ' unexpectedly'}`,
      {
        retryable: true,
        details: { code, signal },
      },
    );
    this.#exitError = error;
    if (!expected && !this.#closeRequested) {
      this.#logger.error(
        { code, signal, crash: this.#sink.crashLines(), openRequests: this.#open.size },
        'llama.node engine host exited unexpectedly',
      );
      this.#unexpectedExitListener?.(error);
    }
    const pending = [...this.#open.values()];
    this.#open.clear();
    for (const request of pending) request.onExit(error);
  }
}
