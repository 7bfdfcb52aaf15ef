import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ApiClient } from './api-client.ts';
import { collectRecords, createFilesBatch, waitForBatch, type SubmitRecord } from './files-batch.ts';

export type { SubmitRecord } from './files-batch.ts';

export interface SubmitOptions {
  client: ApiClient;
  /** The API base URL (the upload state is kept per server). */
  server: string;
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
  /** Upload state file (resume after Ctrl-C). Defaults to `.gembatch/cli-uploads.json`. */
  statePath?: string;
  /** Polling period (ms). Defaults to `1000`. */
  pollMs?: number;
  /** Give up after this long (ms): the batch is cancelled and unfinished inputs are reported failed with GB_ERR_TIMEOUT. Defaults to no limit. */
  timeoutMs?: number;
  /** Ctrl-C: stop uploading or waiting; the batch keeps running and the same command resumes it. */
  signal?: AbortSignal;
}

/** Expands files and folders (recursively, skipping dotfiles) into a sorted list of files. */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const path = resolve(input);
    const info = await stat(path);
    if (info.isDirectory()) {
      const entries = (await readdir(path, { withFileTypes: true }))
        .filter((e) => !e.name.startsWith('.'))
        .sort((a, b) => a.name.localeCompare(b.name));
      files.push(...(await expandInputs(entries.map((e) => join(path, e.name)))));
    } else if (info.isFile()) files.push(path);
  }
  return files;
}

/**
 * Runs the files as one batch: uploads them (bounded, resumable), creates the batch (the same
 * command run again finds the same batch), waits with a progress bar, and emits one record per
 * input in input order. Resolves to undefined when `signal` interrupts it before the batch ended.
 */
export async function submitFiles(options: SubmitOptions): Promise<SubmitRecord[] | undefined> {
  const { client, files } = options;
  const { batch, customIds, uploadErrors, settle } = await createFilesBatch({
    client,
    server: options.server,
    files,
    job: options.job,
    ...(options.statePath ? { statePath: options.statePath } : {}),
    ...(options.uploadConcurrency ? { uploadConcurrency: options.uploadConcurrency } : {}),
    ...(options.progress ? { status: options.progress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!batch) {
    const records = await collectRecords(
      client,
      undefined,
      files,
      customIds,
      { code: 'GB_ERR_INTERNAL', message: 'not uploaded' },
      uploadErrors,
    );
    for (const record of records) options.onRecord(record);
    return records;
  }
  options.progress?.write(`batch ${batch.id}: ${files.length - uploadErrors.size} requests\n`);
  let final = await waitForBatch(client, batch.id, {
    ...(options.progress ? { progress: options.progress } : {}),
    ...(options.pollMs ? { pollMs: options.pollMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  if (options.signal?.aborted) {
    options.progress?.write(
      `interrupted; batch ${batch.id} keeps running. Run the same command again to resume waiting for it.\n`,
    );
    return undefined;
  }
  const timedOut = !['completed', 'failed', 'cancelled', 'expired'].includes(final.status);
  if (timedOut) {
    await client.cancelBatch(batch.id);
    final = await waitForBatch(client, batch.id, { pollMs: 250, timeoutMs: 60_000 });
  }
  if (final.status === 'failed') {
    await settle();
    throw new Error(
      `batch ${batch.id} failed: ${final.errors?.data.map((e) => `${e.line ? `line ${e.line}: ` : ''}${e.message}`).join('; ') ?? 'validation failed'}`,
    );
  }
  const records = await collectRecords(
    client,
    batch.id,
    files,
    customIds,
    timedOut
      ? { code: 'GB_ERR_TIMEOUT', message: 'the job did not finish before the --timeout' }
      : { code: 'GB_ERR_CANCELLED', message: `the batch ended ${final.status} before this request ran` },
    uploadErrors,
  );
  for (const record of records) options.onRecord(record);
  // Seen through: the same command again is a new batch, not these results again.
  await settle();
  return records;
}
