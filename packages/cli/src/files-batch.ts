import { createHash } from 'node:crypto';
import { isAbsolute, relative } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ErrorBody, Timings, Usage } from '@gembatch/contracts';
import type { ApiClient, BatchObject } from './api-client.ts';
import { BatchProgress } from './batch-progress.ts';
import { batchGeneration, DEFAULT_UPLOAD_STATE, nextGeneration, uploadInputs } from './upload-state.ts';

/** Batch statuses after which nothing changes. */
export const FINAL_BATCH_STATUSES = new Set(['completed', 'failed', 'cancelled', 'expired']);
/** custom_id limit of a batch input line. */
const MAX_CUSTOM_ID = 512;

export interface FilesBatchOptions {
  client: ApiClient;
  /** API base URL (upload state is per server). */
  server: string;
  files: readonly string[];
  /** The `/v1/jobs` body without its input (task, options, max_tokens...). */
  job: Record<string, unknown>;
  /**
   * `/v1/chat/completions` instead of `/v1/jobs`: each request is one user message, `chat.prompt` as
   * text followed by the file as a file part. Defaults to `/v1/jobs` with `job`.
   */
  chat?: { prompt: string; model?: string; maxTokens?: number };
  /** Upload state file (see `uploadInputs`). */
  statePath?: string;
  /** Uploads in flight at once. Defaults to `4`. */
  uploadConcurrency?: number;
  completionWindow?: string;
  metadata?: Record<string, string>;
  webhookUrl?: string;
  /** Upload progress lines go here. */
  status?: NodeJS.WritableStream;
  signal?: AbortSignal;
}

/** A batch made of local files, the custom_id of each file (input order), and the files the server refused. */
export interface FilesBatch {
  /** Undefined when no file could be uploaded. */
  batch: BatchObject | undefined;
  customIds: string[];
  /** Input index → why the upload was refused (those inputs are not in the batch). */
  uploadErrors: Map<number, ErrorBody>;
  /** Call once the batch has been seen through: the same command then makes a new batch. */
  settle: () => Promise<void>;
}

/** A created batch and how to mark it seen through. */
export interface CreatedBatch {
  batch: BatchObject;
  /** Call once the batch has been seen through: the same input then makes a new batch next time. */
  settle: () => Promise<void>;
}

/**
 * Uploads the files (bounded, resumable), writes one `/v1/jobs` line per file (custom_id: the path
 * as given, relative to the working directory), uploads that JSONL and creates the batch. The
 * Idempotency-Key is the JSONL's hash, so the same command run again after Ctrl-C gets the same
 * batch back instead of starting another.
 */
export async function createFilesBatch(options: FilesBatchOptions): Promise<FilesBatch> {
  let done = 0;
  let reused = 0;
  const { ids, errors } = await uploadInputs({
    client: options.client,
    server: options.server,
    files: options.files,
    ...(options.statePath ? { statePath: options.statePath } : {}),
    ...(options.uploadConcurrency ? { concurrency: options.uploadConcurrency } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    onFile: (_index, wasReused) => {
      done += 1;
      if (wasReused) reused += 1;
      if (done === options.files.length || done % 100 === 0)
        options.status?.write(
          `uploaded ${done}/${options.files.length}${reused > 0 ? ` (${reused} already on the server)` : ''}\n`,
        );
    },
  });
  const customIds = customIdsFor(options.files);
  const endpoint = options.chat ? '/v1/chat/completions' : '/v1/jobs';
  const bodyFor = (fileId: string) =>
    options.chat ? chatBody(options.chat, fileId) : { ...options.job, file_id: fileId };
  const lines = ids.flatMap((fileId, index) =>
    fileId === null
      ? []
      : [JSON.stringify({ custom_id: customIds[index], method: 'POST', url: endpoint, body: bodyFor(fileId) })],
  );
  if (lines.length === 0) return { batch: undefined, customIds, uploadErrors: errors, settle: async () => undefined };
  const created = await createJsonlBatch(
    options.client,
    Buffer.from(`${lines.join('\n')}\n`, 'utf8'),
    endpoint,
    options,
  );
  return { batch: created.batch, customIds, uploadErrors: errors, settle: created.settle };
}

/** A chat completion request on one uploaded file. */
function chatBody(chat: NonNullable<FilesBatchOptions['chat']>, fileId: string): Record<string, unknown> {
  return {
    ...(chat.model ? { model: chat.model } : {}),
    ...(chat.maxTokens ? { max_tokens: chat.maxTokens } : {}),
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: chat.prompt },
          { type: 'file', file: { file_id: fileId } },
        ],
      },
    ],
  };
}

/**
 * Uploads JSONL bytes as a `batch` file and creates the batch. The Idempotency-Key is the input's hash
 * and its generation in the local state: until `settle()`, the same input gets the same batch back.
 */
export async function createJsonlBatch(
  client: ApiClient,
  jsonl: Buffer,
  endpoint: string,
  options: {
    server?: string;
    statePath?: string;
    completionWindow?: string;
    metadata?: Record<string, string>;
    webhookUrl?: string;
  } = {},
): Promise<CreatedBatch> {
  const statePath = options.statePath ?? DEFAULT_UPLOAD_STATE;
  const server = options.server ?? '';
  const inputHash = createHash('sha256').update(endpoint).update('\n').update(jsonl).digest('hex').slice(0, 48);
  const key = `cli-${inputHash}-${await batchGeneration(statePath, server, inputHash)}`;
  const input = await client.uploadBytes(jsonl, 'batch-input.jsonl', 'batch');
  const batch = await client.createBatch(
    {
      input_file_id: input.id,
      endpoint,
      completion_window: options.completionWindow ?? '24h',
      ...(options.metadata ? { metadata: options.metadata } : {}),
      ...(options.webhookUrl ? { webhook_url: options.webhookUrl } : {}),
    },
    key,
  );
  return { batch, settle: () => nextGeneration(statePath, server, inputHash) };
}

/** The path as the user gave it (relative to the working directory when inside it); unique, at most 512 characters. */
function customIdsFor(files: readonly string[]): string[] {
  const used = new Set<string>();
  return files.map((file, index) => {
    const rel = relative(process.cwd(), file);
    let id = rel.startsWith('..') || isAbsolute(rel) ? file : rel;
    if (id.length > MAX_CUSTOM_ID || used.has(id)) id = `${index}:${id.slice(-(MAX_CUSTOM_ID - 12))}`;
    used.add(id);
    return id;
  });
}

export interface WaitOptions {
  /** Where the progress bar goes (stderr); none: no bar. */
  progress?: NodeJS.WritableStream;
  /** Defaults to `1000`. */
  pollMs?: number;
  signal?: AbortSignal;
  /** Give up after this long (ms): resolves with the batch as it is then. */
  timeoutMs?: number;
}

/** Polls the batch until it ends (or the timeout or signal), drawing the progress bar. */
export async function waitForBatch(
  client: ApiClient,
  batchId: string,
  options: WaitOptions = {},
): Promise<BatchObject> {
  const bar = new BatchProgress(options.progress);
  const deadline = options.timeoutMs ? Date.now() + options.timeoutMs : Infinity;
  let batch = await client.getBatch(batchId);
  while (!FINAL_BATCH_STATUSES.has(batch.status) && Date.now() < deadline && !options.signal?.aborted) {
    bar.update(batch);
    await delay(options.pollMs ?? 1_000, undefined, options.signal ? { signal: options.signal } : {}).catch(
      () => undefined,
    );
    batch = await client.getBatch(batchId);
  }
  bar.finish(batch);
  return batch;
}

/** One line of `results.jsonl` (the format `gembatch submit` has always written). */
export interface SubmitRecord {
  input: string;
  job_id: string | null;
  status: 'completed' | 'failed' | 'cancelled';
  result?: unknown;
  error?: ErrorBody;
  usage?: Usage;
  timings?: Timings;
}

interface OutputLine {
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: ErrorBody | null;
}

/**
 * Reads the batch's output and error lines and returns one record per input, in input order. An
 * input with neither line (the batch ended first) is reported failed with `unfinished`.
 */
export async function collectRecords(
  client: ApiClient,
  batchId: string | undefined,
  files: readonly string[],
  customIds: readonly string[],
  unfinished: ErrorBody,
  uploadErrors: ReadonlyMap<number, ErrorBody> = new Map(),
): Promise<SubmitRecord[]> {
  const indexOf = new Map(customIds.map((id, index) => [id, index]));
  const records: Array<SubmitRecord | undefined> = Array.from({ length: files.length }, (_, index) => {
    const error = uploadErrors.get(index);
    return error ? { input: files[index] as string, job_id: null, status: 'failed', error } : undefined;
  });
  for (const kind of batchId === undefined ? [] : (['output', 'errors'] as const)) {
    for await (const raw of client.batchLines(batchId as string, kind)) {
      const line = JSON.parse(raw) as OutputLine;
      const index = indexOf.get(line.custom_id);
      if (index === undefined) continue;
      const input = files[index] as string;
      const jobId = line.response?.request_id?.startsWith('job_') ? line.response.request_id : null;
      if (kind === 'output' && line.response) {
        const body = line.response.body as { job_id?: string; output?: unknown; usage?: Usage; timings?: Timings };
        records[index] = {
          input,
          job_id: body.job_id ?? jobId,
          status: 'completed',
          result: body.output,
          ...(body.usage ? { usage: body.usage } : {}),
          ...(body.timings ? { timings: body.timings } : {}),
        };
      } else {
        const error = line.error ?? { code: 'GB_ERR_INTERNAL', message: 'the request failed' };
        records[index] = {
          input,
          job_id: jobId,
          status: error.code === 'GB_ERR_CANCELLED' ? 'cancelled' : 'failed',
          error,
        };
      }
    }
  }
  return records.map(
    (record, index) => record ?? { input: files[index] as string, job_id: null, status: 'failed', error: unfinished },
  );
}
