import { createReadStream } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Readable as ReadableType } from 'node:stream';
import { GembatchError, toGembatchError } from '@gembatch/contracts';
import type { Processor, ProcessorContext } from '@gembatch/queue';
import { streamToFileAtomic, writeFileAtomic } from './atomic-write.ts';
import type { FolderRoot } from './folder-root.ts';
import { scanFolder, type ScannedFile } from './scan-folder.ts';
import { runIdForJob } from './schedule-ids.ts';
import type { ScheduleStore } from './schedule-store.ts';
import {
  FILE_ID_PLACEHOLDER,
  type RunStatus,
  type ScheduleEndpoint,
  type ScheduleRecord,
  type ScheduleRunJobData,
  type ScheduleRunView,
} from './schedule-types.ts';

/** The batch operations a run needs (`BatchService` of `@gembatch/batches` has this shape). */
export interface ScheduleBatches {
  createBatch(
    tenant: string,
    request: {
      input_file_id: string;
      endpoint: ScheduleEndpoint;
      completion_window: string;
      metadata: Record<string, string> | null;
      webhook_url?: string;
    },
    options: { idempotencyKey?: string },
  ): Promise<{ id: string }>;
  getBatch(
    tenant: string,
    batchId: string,
  ): Promise<{
    status: string;
    request_counts: { total: number; completed: number; failed: number };
    errors: { data: Array<{ message: string }> } | null;
  }>;
  /** The output or error file's JSONL, in input order, in chunks of any size (not necessarily whole lines). */
  resultLines(tenant: string, batchId: string, kind: 'output' | 'errors'): AsyncIterable<string>;
}

/** Stores bytes as a tenant's file (`FileStore` of `@gembatch/storage` has this shape). */
export interface ScheduleFiles {
  create(
    source: ReadableType | Buffer,
    options: { tenant: string; filename: string; purpose: 'batch' | 'user_data' },
  ): Promise<{ id: string; sha256: string }>;
}

export interface ScheduleRunnerOptions {
  store: ScheduleStore;
  root: FolderRoot;
  batches: ScheduleBatches;
  files: ScheduleFiles;
  /** Most files one run takes (the rest wait for the next run). Defaults to `10000`. */
  maxFiles?: number;
  /** How often a run reads its batch's status while waiting (ms). Defaults to `2000`. */
  pollMs?: number;
  /** The batches' completion window. Defaults to `24h`. */
  completionWindow?: string;
}

/** Batch statuses after which nothing changes. */
const FINAL = new Set(['completed', 'failed', 'cancelled', 'expired']);
/** Ledger writes per round trip while results are written. */
const LEDGER_CHUNK = 500;
/** custom_id limit of a batch input line. */
const MAX_CUSTOM_ID = 512;

/**
 * The schedule-run processor. One run: take the schedule's one-run-at-a-time marker (a run that
 * finds another going is recorded `skipped`), scan the source folder, keep the files whose sha256
 * the ledger has not seen (and one of each content within the run), upload them, submit one batch
 * (idempotent on the run id), wait for it to end, write one result file per input plus the batch's
 * JSONL into the output folder (each atomically), add the written inputs' hashes to the ledger,
 * and record the run. A retried run job resumes with the same run and batch.
 */
export function createScheduleRunner(options: ScheduleRunnerOptions): Processor<ScheduleRunJobData, ScheduleRunView> {
  const { store } = options;
  return async (payload, ctx) => {
    const runId = runIdForJob(ctx.jobId);
    const record = await store.get(payload.tenant, payload.schedule_id);
    const previous = await store.getRun(payload.schedule_id, runId);
    let run: ScheduleRunView =
      previous && previous.status !== 'queued'
        ? previous
        : {
            id: runId,
            object: 'schedule.run',
            schedule_id: payload.schedule_id,
            trigger: payload.trigger,
            status: 'running',
            started_at: Math.floor(Date.now() / 1000),
            finished_at: null,
            files_found: 0,
            files_new: 0,
            batch_id: null,
            request_counts: null,
            error: null,
          };
    if (!record) {
      ctx.log.info({ scheduleId: payload.schedule_id }, 'schedule gone; run dropped');
      return run;
    }
    if (previous && previous.status !== 'queued' && previous.status !== 'running') return previous;
    if (!(await store.acquire(record.id, runId))) {
      run = {
        ...run,
        status: 'skipped',
        finished_at: Math.floor(Date.now() / 1000),
        error: {
          code: 'GB_ERR_CONFLICT',
          message: `run ${await store.activeRun(record.id)} of this schedule is still going`,
        },
      };
      await store.putRun(run);
      ctx.log.info({ scheduleId: record.id, runId }, 'schedule run skipped: the previous run is still going');
      return run;
    }
    try {
      await store.putRun(run);
      if (run.batch_id === null) {
        run = await submit(options, record, run, ctx);
        await store.putRun(run);
      }
      if (run.batch_id !== null) run = await finish(options, record, run, ctx);
      else run = { ...run, status: 'completed', finished_at: Math.floor(Date.now() / 1000) };
      await store.putRun(run);
      ctx.log.info(
        {
          scheduleId: record.id,
          runId,
          batchId: run.batch_id,
          status: run.status,
          filesFound: run.files_found,
          filesNew: run.files_new,
        },
        'schedule run finished',
      );
      await store.release(record.id, runId);
      return run;
    } catch (thrown) {
      const error = toGembatchError(thrown);
      const final = !error.retryable || ctx.attempt >= ctx.maxAttempts;
      if (final) {
        run = {
          ...run,
          status: 'failed',
          finished_at: Math.floor(Date.now() / 1000),
          error: { code: error.code, message: error.message },
        };
        await store.putRun(run);
        await store.release(record.id, runId);
      }
      throw error;
    }
  };
}

/** Scans, filters by the ledger, uploads and submits the run's batch (or finds nothing new). */
async function submit(
  options: ScheduleRunnerOptions,
  record: ScheduleRecord,
  run: ScheduleRunView,
  ctx: ProcessorContext,
): Promise<ScheduleRunView> {
  const { store, root } = options;
  const source = await root.existingFolder(record.source_folder, 'source_folder');
  const found = await scanFolder(
    root,
    source,
    options.maxFiles ?? 10_000,
    ctx.signal,
    await store.knownHashes(record.id),
  );
  await store.saveHashes(record.id, found);
  const seen = await store.seen(
    record.id,
    found.map((f) => f.sha256),
  );
  const fresh: ScannedFile[] = [];
  const inRun = new Set<string>();
  found.forEach((file, index) => {
    if (seen[index] || inRun.has(file.sha256)) return;
    inRun.add(file.sha256);
    fresh.push(file);
  });
  const counted = { ...run, files_found: found.length, files_new: fresh.length };
  if (fresh.length === 0) return counted;

  const requests: Array<{ customId: string; sha256: string; fileId: string }> = [];
  for (const file of fresh) {
    ctx.signal.throwIfAborted();
    const stored = await options.files.create(createReadStream(file.path), {
      tenant: record.tenant,
      filename: file.relative.split('/').at(-1) as string,
      purpose: 'user_data',
    });
    // The stored hash, not the scanned one: the file may have changed in between, and the ledger must name what ran.
    requests.push({ customId: customIdFor(file), sha256: stored.sha256, fileId: stored.id });
  }
  await store.putRunFiles(record.id, run.id, requests);
  const input = await options.files.create(Readable.from(inputLines(record, requests)), {
    tenant: record.tenant,
    filename: `${run.id}.jsonl`,
    purpose: 'batch',
  });
  const batch = await options.batches.createBatch(
    record.tenant,
    {
      input_file_id: input.id,
      endpoint: record.endpoint,
      completion_window: options.completionWindow ?? '24h',
      metadata: { ...record.metadata, schedule_id: record.id, run_id: run.id },
      ...(record.webhook ? { webhook_url: record.webhook.url } : {}),
    },
    // The run id as idempotency key: a run retried after a crash here gets the same batch back.
    { idempotencyKey: `schedule-run:${run.id}` },
  );
  ctx.log.info(
    { scheduleId: record.id, runId: run.id, batchId: batch.id, files: requests.length },
    'schedule run submitted its batch',
  );
  return { ...counted, batch_id: batch.id };
}

/** Waits for the run's batch to end, writes its results, feeds the ledger. */
async function finish(
  options: ScheduleRunnerOptions,
  record: ScheduleRecord,
  run: ScheduleRunView,
  ctx: ProcessorContext,
): Promise<ScheduleRunView> {
  const batchId = run.batch_id as string;
  const pollMs = options.pollMs ?? 2_000;
  let batch = await options.batches.getBatch(record.tenant, batchId);
  while (!FINAL.has(batch.status)) {
    const counts = batch.request_counts;
    if (counts.total > 0) ctx.progress(((counts.completed + counts.failed) / counts.total) * 100);
    await delay(pollMs, undefined, { signal: ctx.signal }).catch(() => {
      throw new GembatchError(
        'GB_ERR_SERVICE_UNAVAILABLE',
        'the run was interrupted while its batch was going; it resumes on retry',
      );
    });
    batch = await options.batches.getBatch(record.tenant, batchId);
  }
  const output = await options.root.folderToWrite(record.output_folder, 'output_folder');
  const pending: string[] = [];
  const flush = async () => {
    const hashes = await options.store.runFileHashes(record.id, run.id, pending.splice(0));
    await options.store.remember(
      record.id,
      hashes.filter((h): h is string => h !== null),
    );
  };
  const perInput = (kind: 'output' | 'errors') =>
    async function* () {
      for await (const line of jsonLines(options.batches.resultLines(record.tenant, batchId, kind))) {
        const customId = (JSON.parse(line) as { custom_id?: unknown }).custom_id;
        if (typeof customId === 'string') {
          await writeFileAtomic(resultPath(output, customId), line);
          pending.push(customId);
          if (pending.length >= LEDGER_CHUNK) await flush();
        }
        yield line;
      }
      await flush();
    };
  await streamToFileAtomic(join(output, `${batchId}.jsonl`), perInput('output')());
  if (batch.request_counts.failed > 0)
    await streamToFileAtomic(join(output, `${batchId}.errors.jsonl`), perInput('errors')());
  const status: RunStatus = batch.status === 'completed' ? 'completed' : (batch.status as RunStatus);
  const error =
    batch.status === 'failed'
      ? { code: 'GB_ERR_BAD_REQUEST', message: batch.errors?.data[0]?.message ?? 'the batch failed validation' }
      : null;
  return { ...run, status, finished_at: Math.floor(Date.now() / 1000), request_counts: batch.request_counts, error };
}

/** Whole lines (each with its newline) out of chunks of text. */
async function* jsonLines(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of chunks) {
    rest += chunk;
    let newline = rest.indexOf('\n');
    while (newline >= 0) {
      const line = rest.slice(0, newline + 1);
      rest = rest.slice(newline + 1);
      if (line.trim()) yield line;
      newline = rest.indexOf('\n');
    }
  }
  if (rest.trim()) yield `${rest}\n`;
}

/** The batch input: one request per file, the template's `{{file_id}}` replaced by the file's id. */
function* inputLines(
  record: ScheduleRecord,
  requests: ReadonlyArray<{ customId: string; fileId: string }>,
): Generator<string> {
  for (const request of requests)
    yield `${JSON.stringify({ custom_id: request.customId, method: 'POST', url: record.endpoint, body: fillTemplate(record.body, request.fileId) })}\n`;
}

/** Replaces `{{file_id}}` in every string of a JSON value. */
export function fillTemplate<T>(value: T, fileId: string): T {
  if (typeof value === 'string') return value.replaceAll(FILE_ID_PLACEHOLDER, fileId) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => fillTemplate(item, fileId)) as T;
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, fillTemplate(item, fileId)])) as T;
  return value;
}

/** The input's path under the source folder; a path too long for a custom_id keeps its end and a hash prefix. */
function customIdFor(file: ScannedFile): string {
  if (file.relative.length <= MAX_CUSTOM_ID) return file.relative;
  return `${file.sha256.slice(0, 16)}-${file.relative.slice(-(MAX_CUSTOM_ID - 17))}`;
}

/** `<output>/<custom_id>.json`, refusing any custom_id that would lead outside the output folder. */
function resultPath(output: string, customId: string): string {
  const path = resolve(output, `${customId}.json`);
  const rel = relative(output, path);
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new GembatchError('GB_ERR_INTERNAL', 'a result path resolved outside the output folder');
  return path;
}
