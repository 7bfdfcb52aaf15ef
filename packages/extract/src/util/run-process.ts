import { spawn } from 'node:child_process';
import { childProcessEnv } from '@gembatch/config';
import { GembatchError } from '@gembatch/contracts';
import { cancelledError } from './abort.ts';

/** Options of `runProcess`. */
export interface RunProcessOptions {
  /** Kill the process (SIGKILL) after this many milliseconds and fail with `GB_ERR_TIMEOUT`. */
  timeoutMs: number;
  /** Kill the process when this fires and fail with `GB_ERR_CANCELLED`. Defaults to none. */
  signal?: AbortSignal;
  /** Bytes written to the process's stdin, which is then closed. Defaults to an empty, closed stdin. */
  stdin?: Uint8Array;
  /** Kill the process once stdout exceeds this many bytes; the result then has `overflowed: true`. Defaults to 256 MiB. */
  maxStdoutBytes?: number;
  /** Receives stdout chunk by chunk as it arrives, instead of collecting it into the result's `stdout` (then empty). Defaults to collecting. */
  onStdout?: (chunk: Buffer) => void;
  /** Variables set for the child over the minimal environment (`childProcessEnv`); nothing else of this process's environment is passed. Defaults to none. */
  env?: Record<string, string>;
}

/** What a finished process left behind. `stderrTail` is for classifying failures: it may hold document content, so never log it. */
export interface ProcessResult {
  exitCode: number | null;
  stdout: Buffer;
  stderrTail: string;
  overflowed: boolean;
}

// Why 256 MiB: far above any real page range's text, low enough that a hostile file cannot exhaust memory.
const DEFAULT_MAX_STDOUT_BYTES = 256 * 1024 * 1024;
// Why 4 KiB: enough to see the last few error lines, which is all classification needs.
const STDERR_TAIL_CHARS = 4096;

/**
 * Runs a command to completion with a time limit, an abort signal and a bound on output, so a
 * stuck or hostile child never outlives its job. Rejects only for timeouts (`GB_ERR_TIMEOUT`),
 * cancellation (`GB_ERR_CANCELLED`) and failure to start (`GB_ERR_INTERNAL`); a non-zero exit is a
 * normal result for the caller to classify.
 */
export function runProcess(
  command: string,
  args: readonly string[],
  options: RunProcessOptions,
): Promise<ProcessResult> {
  const maxStdout = options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT_BYTES;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(cancelledError());
      return;
    }
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: childProcessEnv(options.env === undefined ? {} : { set: options.env }),
    });
    const chunks: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrTail = '';
    let overflowed = false;
    let failure: GembatchError | undefined;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      failure = new GembatchError(
        'GB_ERR_TIMEOUT',
        `${command} ran longer than ${options.timeoutMs} ms and was stopped`,
      );
      kill();
    }, options.timeoutMs);
    const onAbort = () => {
      failure = cancelledError();
      kill();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) {
        overflowed = true;
        kill();
        return;
      }
      if (options.onStdout) options.onStdout(chunk);
      else chunks.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
    });
    // The child may exit before reading all of stdin (EPIPE); its exit status tells what happened.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin);
    child.on('error', (error) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(
        failure ?? new GembatchError('GB_ERR_INTERNAL', `could not run ${command}: ${error.message}`, { cause: error }),
      );
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else resolve({ exitCode, stdout: Buffer.concat(chunks), stderrTail, overflowed });
    });
  });
}
