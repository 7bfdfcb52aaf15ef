import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ErrorBody, Timings, Usage } from '@gembatch/contracts';
import { ApiError, type ApiClient } from './api-client.ts';
import { errorMessage } from '@gembatch/contracts';

/** One line of `results.jsonl`. */
export interface SubmitRecord {
  input: string;
  job_id: string | null;
  status: 'completed' | 'failed' | 'cancelled';
  result?: unknown;
  error?: ErrorBody;
  usage?: Usage;
  timings?: Timings;
}

export interface SubmitOptions {
  client: ApiClient;
  /** Files, in the order results are written. */
  files: string[];
  /** The job body without the input (task, options, max_tokens...). */
  job: Record<string, unknown>;
  /** Receives one JSON line per input, in input order. */
  onRecord(record: SubmitRecord): void;
  /** Progress display target (stderr). */
  progress?: NodeJS.WriteStream;
  /** Uploads in flight at once. Defaults to `4`. */
  uploadConcurrency?: number;
  /** Polling period (ms). Defaults to `500`. */
  pollMs?: number;
  /** Give up after this long (ms); unfinished jobs are reported failed with GB_ERR_TIMEOUT. Defaults to no limit. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Expands files and folders (recursively, skipping dotfiles) into a sorted list of files. */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const path = resolve(input);
    const info = await stat(path);
    if (info.isDirectory()) {
      const entries = (await readdir(path, { withFileTypes: true })).filter((e) => !e.name.startsWith('.')).sort((a, b) => a.name.localeCompare(b.name));
      files.push(...(await expandInputs(entries.map((e) => join(path, e.name)))));
    } else if (info.isFile()) files.push(path);
  }
  return files;
}

/**
 * Uploads each file, creates a job for it, waits for every job with a progress line, and emits
 * one record per input in input order (as soon as every earlier input has one).
 */
export async function submitFiles(options: SubmitOptions): Promise<SubmitRecord[]> {
  const { client, files } = options;
  // Array.from, not new Array(n): `some`/`filter` skip the holes of a sparse array.
  const records: Array<SubmitRecord | undefined> = Array.from({ length: files.length }, () => undefined);
  const jobIds: Array<string | null> = Array.from({ length: files.length }, () => null);
  let emitted = 0;
  const emit = () => {
    while (emitted < files.length && records[emitted]) options.onRecord(records[emitted++] as SubmitRecord);
  };
  const bar = new ProgressLine(options.progress, files.length);

  let next = 0;
  const uploadOne = async () => {
    while (next < files.length && !options.signal?.aborted) {
      const index = next++;
      const input = files[index] as string;
      try {
        const file = await client.uploadFile(input);
        const job = await client.createJob({ ...options.job, file_id: file.id });
        jobIds[index] = job.id;
      } catch (error) {
        records[index] = { input, job_id: null, status: 'failed', error: toErrorBody(error) };
        bar.update({ failed: 1 });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.uploadConcurrency ?? 4, files.length) }, uploadOne));
  emit();

  const deadline = options.timeoutMs ? Date.now() + options.timeoutMs : Infinity;
  while (records.some((r) => r === undefined) && !options.signal?.aborted) {
    const pending = jobIds.map((id, index) => ({ id, index })).filter(({ index }) => records[index] === undefined);
    let running = 0;
    await Promise.all(
      pending.map(async ({ id, index }) => {
        const input = files[index] as string;
        const view = await client.getJob(id as string).catch((error: unknown) => error as Error);
        if (view instanceof Error) return;
        if (view.status === 'completed') {
          const result = await client.getResult(view.id);
          records[index] = { input, job_id: view.id, status: 'completed', result: result.output, usage: result.usage, timings: result.timings };
          bar.update({ done: 1 });
        } else if (view.status === 'failed' || view.status === 'cancelled') {
          records[index] = { input, job_id: view.id, status: view.status, ...(view.error ? { error: view.error } : {}) };
          bar.update({ failed: 1 });
        } else if (view.status === 'running' || view.status === 'extracting') running += 1;
      }),
    );
    bar.update({ running });
    emit();
    if (Date.now() > deadline) {
      for (const { index } of pending) {
        if (records[index] === undefined) records[index] = { input: files[index] as string, job_id: jobIds[index] ?? null, status: 'failed', error: { code: 'GB_ERR_TIMEOUT', message: 'the job did not finish before the --timeout' } };
      }
      emit();
      break;
    }
    if (records.some((r) => r === undefined)) await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
  }
  bar.finish();
  return records.filter((r): r is SubmitRecord => r !== undefined);
}

function toErrorBody(error: unknown): ErrorBody {
  if (error instanceof ApiError) return { code: error.code as ErrorBody['code'], message: error.message };
  return { code: 'GB_ERR_INTERNAL', message: errorMessage(error) };
}

/** `[#####-----] 5/10 done · 1 failed · 3 running`, redrawn in place on a TTY, a line per change otherwise. */
class ProgressLine {
  readonly #out: NodeJS.WriteStream | undefined;
  readonly #total: number;
  #done = 0;
  #failed = 0;
  #running = 0;
  #last = '';

  constructor(out: NodeJS.WriteStream | undefined, total: number) {
    this.#out = out;
    this.#total = total;
  }

  update(change: { done?: number; failed?: number; running?: number }): void {
    this.#done += change.done ?? 0;
    this.#failed += change.failed ?? 0;
    if (change.running !== undefined) this.#running = change.running;
    this.#draw();
  }

  finish(): void {
    if (this.#out?.isTTY) this.#out.write('\n');
  }

  #draw(): void {
    if (!this.#out) return;
    const finished = this.#done + this.#failed;
    const width = 30;
    const filled = this.#total === 0 ? width : Math.round((finished / this.#total) * width);
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${finished}/${this.#total} finished · ${this.#done} completed · ${this.#failed} failed · ${this.#running} running`;
    if (line === this.#last) return;
    this.#last = line;
    if (this.#out.isTTY) this.#out.write(`\r${line}`);
    else this.#out.write(`${line}\n`);
  }
}

