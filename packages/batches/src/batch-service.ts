import { createReadStream } from 'node:fs';
import { lstat, readdir, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { GembatchError, newBatchId } from '@gembatch/contracts';
import type { BlobStore } from '@gembatch/storage';
import {
  completionWindowSeconds,
  FINAL_BATCH_STATUSES,
  type BatchObject,
  type CreateBatchRequest,
  type CreateFileIdsBatchRequest,
  type CreateFolderBatchRequest,
} from './batch-schemas.ts';
import { BatchStore, toBatchObject, type BatchRecord } from './batch-store.ts';
import { claimIdempotencyKey, releaseIdempotencyKey } from './idempotency.ts';
import type { BatchFiles } from './request-mapping.ts';
import { streamResults } from './result-stream.ts';

/** A concurrent duplicate waits this long for the first request to finish creating the batch. */
const IDEMPOTENT_WAIT_MS = 10_000;
/** Why 200,000: twice the 100k batches this service is tested with; beyond, split the work. */
export const DEFAULT_MAX_BATCH_REQUESTS = 200_000;
/** Why 100,000 files: a folder batch walks and uploads each file; more should be several batches. */
const MAX_FOLDER_FILES = 100_000;

export interface BatchServiceOptions {
  /** Request/response connection. The caller closes it. */
  redis: Redis;
  /** Key prefix (`GEMBATCH_REDIS_PREFIX`). */
  prefix: string;
  blobStore: BlobStore;
  files: BatchFiles;
  /** How long finished batches stay readable (seconds). Defaults to 7 days. */
  retentionSeconds?: number;
  /** Root under which `{folder}` batches may read; unset disables them. */
  folderRoot?: string;
  /** Most requests per batch. Defaults to `200000`. */
  maxRequests?: number;
  /** Called when a batch is created or cancelled, so a feeder in this process acts at once. */
  onChange?: () => void;
  /** Refuses a `webhook_url` the operator has not allowed (throws a 400 `GembatchError`). Unset: any URL passes. */
  assertWebhookUrl?: (url: string, field: string) => void;
}

export interface BatchList {
  object: 'list';
  data: BatchObject[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

/**
 * The batch API as the routes use it: create (from an input file, a list of file ids or a
 * folder), read, list, cancel, and read results so far. The feeder (`BatchFeeder`) does the rest.
 */
export class BatchService {
  readonly store: BatchStore;
  readonly #options: BatchServiceOptions;

  constructor(options: BatchServiceOptions) {
    this.#options = options;
    this.store = new BatchStore(options.redis, options.prefix, options.retentionSeconds ?? 7 * 24 * 3600);
  }

  /** Most requests per batch. */
  get maxRequests(): number {
    return this.#options.maxRequests ?? DEFAULT_MAX_BATCH_REQUESTS;
  }

  /**
   * Creates a batch in status `validating`. With an `idempotencyKey`, a repeat of the same key (by
   * this tenant, within 24 h) returns the batch the first request created instead of a new one.
   * Unknown input file → `GB_ERR_FILE_NOT_FOUND`; folder outside the allowed root → `GB_ERR_BAD_REQUEST`.
   */
  async createBatch(
    tenant: string,
    request: CreateBatchRequest,
    options: { idempotencyKey?: string } = {},
  ): Promise<BatchObject> {
    if (request.webhook_url !== undefined) this.#options.assertWebhookUrl?.(request.webhook_url, 'webhook_url');
    const id = newBatchId();
    const key = options.idempotencyKey;
    if (key !== undefined) {
      const { redis, prefix } = this.#options;
      const existing = await claimIdempotencyKey(redis, prefix, tenant, 'batches', key, id);
      if (existing !== undefined) return this.#awaitIdempotent(tenant, existing);
      try {
        return await this.#create(tenant, id, request);
      } catch (error) {
        // A failed creation must not pin the key to a batch that does not exist.
        await releaseIdempotencyKey(redis, prefix, tenant, 'batches', key);
        throw error;
      }
    }
    return this.#create(tenant, id, request);
  }

  /** The batch a repeated key names (a concurrent first request may still be storing it). */
  async #awaitIdempotent(tenant: string, existing: string): Promise<BatchObject> {
    const deadline = Date.now() + IDEMPOTENT_WAIT_MS;
    for (;;) {
      const record = await this.store.read(existing);
      if (record && record.tenant === tenant) return toBatchObject(record);
      if (Date.now() > deadline)
        throw new GembatchError(
          'GB_ERR_CONFLICT',
          'idempotency-key: a request with this key is still being processed; retry later',
        );
      // Why 50 ms: the first request is storing its input; it takes milliseconds, not seconds.
      await delay(50);
    }
  }

  async #create(tenant: string, id: string, request: CreateBatchRequest): Promise<BatchObject> {
    let inputFileId: string;
    let endpoint: BatchRecord['endpoint'];
    if ('input_file_id' in request) {
      inputFileId = request.input_file_id;
      endpoint = request.endpoint;
    } else {
      inputFileId =
        'file_ids' in request
          ? await this.#inputFromFileIds(tenant, request)
          : await this.#inputFromFolder(tenant, request);
      endpoint = '/v1/jobs';
    }
    const input = await this.#options.files.find(tenant, inputFileId);
    if (!input) throw new GembatchError('GB_ERR_FILE_NOT_FOUND', `input_file_id: no file ${inputFileId}`);
    // The batch reads its input until it is finalized, even if the file is deleted meanwhile.
    await this.#options.files.references.acquire(input.sha256, batchReferrer(id));
    const now = Date.now();
    const record: BatchRecord = {
      id,
      tenant,
      status: 'validating',
      endpoint,
      input_file_id: inputFileId,
      input_sha256: input.sha256,
      completion_window: request.completion_window,
      metadata: request.metadata ?? null,
      webhook_url: request.webhook_url ?? null,
      created_at: now,
      in_progress_at: null,
      expires_at: now + (completionWindowSeconds(request.completion_window) as number) * 1000,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      total: 0,
      completed: 0,
      failed: 0,
      output_file_id: null,
      error_file_id: null,
      errors: null,
      cursor_line: 0,
      cursor_byte: 0,
      cursor_line_number: 1,
      ending: null,
      input_tokens: 0,
      output_tokens: 0,
    };
    await this.store.create(record);
    this.#options.onChange?.();
    return toBatchObject(record);
  }

  /** Writes a `/v1/jobs` JSONL (one line per file id, custom_id = the file id) and records it as a file. */
  async #inputFromFileIds(tenant: string, request: CreateFileIdsBatchRequest): Promise<string> {
    const body = jobBody(request);
    return this.#writeInput(tenant, async (write) => {
      for (const fileId of request.file_ids)
        await write({ custom_id: fileId, method: 'POST', url: '/v1/jobs', body: { file_id: fileId, ...body } });
    });
  }

  /**
   * Uploads every regular file under the folder (resolved with symlinks; never outside the
   * operator's root), in sorted path order, and writes a `/v1/jobs` line per file whose custom_id
   * is the path relative to the folder.
   */
  async #inputFromFolder(tenant: string, request: CreateFolderBatchRequest): Promise<string> {
    const root = this.#options.folderRoot;
    if (!root)
      throw new GembatchError(
        'GB_ERR_BAD_REQUEST',
        'folder: folder batches are disabled (the operator has not set GEMBATCH_BATCH_FOLDER_ROOT)',
      );
    const realRoot = await realpath(resolve(root));
    const wanted = isAbsolute(request.folder) ? request.folder : join(realRoot, request.folder);
    const folder = await realpath(wanted).catch(() => {
      throw new GembatchError('GB_ERR_BAD_REQUEST', 'folder: no such folder under the allowed root');
    });
    const inside = (path: string) => path === realRoot || path.startsWith(realRoot + sep);
    if (!inside(folder)) throw new GembatchError('GB_ERR_BAD_REQUEST', 'folder: outside the allowed root');
    if (!(await lstat(folder)).isDirectory()) throw new GembatchError('GB_ERR_BAD_REQUEST', 'folder: not a directory');
    const body = jobBody(request);
    const files = this.#options.files;
    let count = 0;
    return this.#writeInput(tenant, async (write) => {
      for await (const { path, real } of walkFiles(folder, inside)) {
        count += 1;
        if (count > MAX_FOLDER_FILES)
          throw new GembatchError(
            'GB_ERR_BAD_REQUEST',
            `folder: more than ${MAX_FOLDER_FILES} files; split it into several batches`,
          );
        const name = relative(folder, path);
        const file = await files.create(createReadStream(real), {
          tenant,
          filename: name.split(sep).at(-1) as string,
          purpose: 'user_data',
        });
        await write({
          custom_id: name.split(sep).join('/'),
          method: 'POST',
          url: '/v1/jobs',
          body: { file_id: file.id, ...body },
        });
      }
      if (count === 0) throw new GembatchError('GB_ERR_BAD_REQUEST', 'folder: has no files');
    });
  }

  /** Streams generated JSONL lines into a new `batch` file of the tenant. */
  async #writeInput(
    tenant: string,
    produce: (write: (line: unknown) => Promise<void>) => Promise<void>,
  ): Promise<string> {
    const stream = new PassThrough();
    const stored = this.#options.files.create(stream, { tenant, filename: 'batch-input.jsonl', purpose: 'batch' });
    const write = async (line: unknown) => {
      if (!stream.write(`${JSON.stringify(line)}\n`))
        await new Promise((resolveDrain) => stream.once('drain', resolveDrain));
    };
    try {
      await produce(write);
      stream.end();
    } catch (error) {
      stream.destroy(error instanceof Error ? error : new Error(String(error)));
      await stored.catch(() => undefined);
      throw error;
    }
    return (await stored).id;
  }

  /** The tenant's batch, or `GB_ERR_NOT_FOUND`. */
  async getBatch(tenant: string, batchId: string): Promise<BatchObject> {
    return toBatchObject(await this.store.get(tenant, batchId));
  }

  /** The tenant's batches, newest first; `after` is the last id of the previous page. */
  async listBatches(tenant: string, options: { after?: string; limit?: number } = {}): Promise<BatchList> {
    const { records, hasMore } = await this.store.list(tenant, options);
    const data = records.map(toBatchObject);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore };
  }

  /**
   * Cancels a batch: status `cancelling` at once; the feeder stops feeding, cancels its requests
   * in the queues, writes the files of what finished and ends it as `cancelled`. Idempotent while
   * cancelling; a finished batch → `GB_ERR_CONFLICT`.
   */
  async cancelBatch(tenant: string, batchId: string): Promise<BatchObject> {
    const record = await this.store.get(tenant, batchId);
    if (record.status === 'cancelling' || record.status === 'cancelled') return toBatchObject(record);
    const moved = await this.store.transition(batchId, ['validating', 'in_progress'], 'cancelling', {
      cancelling_at: Date.now(),
    });
    const after = await this.store.get(tenant, batchId);
    if (!moved && after.status !== 'cancelling' && after.status !== 'cancelled') {
      throw new GembatchError('GB_ERR_CONFLICT', `batch ${batchId} is ${after.status} and cannot be cancelled`, {
        details: { status: after.status },
      });
    }
    this.#options.onChange?.();
    return toBatchObject(after);
  }

  /**
   * The results so far, in input order, as JSONL lines: `output` (successes) or `errors`. Readable
   * while the batch runs (requests not finished yet are left out) and after it ends.
   */
  async *resultLines(tenant: string, batchId: string, kind: 'output' | 'errors'): AsyncGenerator<string> {
    const record = await this.store.get(tenant, batchId);
    if (record.status === 'validating' || record.status === 'failed') return;
    if (FINAL_BATCH_STATUSES.includes(record.status)) {
      // Finalized: the files hold every line (and the input may be gone).
      const fileId = kind === 'output' ? record.output_file_id : record.error_file_id;
      const file = fileId ? await this.#options.files.find(tenant, fileId) : undefined;
      if (file)
        for await (const chunk of await this.#options.files.open(file)) yield (chunk as Buffer).toString('utf8');
      return;
    }
    const unfinished =
      record.status === 'expired'
        ? ({
            ok: false,
            code: 'GB_ERR_BATCH_EXPIRED',
            message: 'the batch expired before this request ran',
            at: record.expired_at ?? Date.now(),
          } as const)
        : ('skip' as const);
    for await (const entry of streamResults(
      { redis: this.#options.redis, prefix: this.#options.prefix, blobStore: this.#options.blobStore },
      record,
      { unfinished, outputs: kind === 'output' },
    )) {
      if ((entry.kind === 'output') === (kind === 'output')) yield `${JSON.stringify(entry.line)}\n`;
    }
  }
}

/** A batch's member in its input blob's reference set. */
export function batchReferrer(batchId: string): string {
  return `batch:${batchId}`;
}

/** The shared `/v1/jobs` body fields of a native batch. */
function jobBody(request: CreateFileIdsBatchRequest | CreateFolderBatchRequest): Record<string, unknown> {
  return {
    task: request.task,
    ...(request.options ? { options: request.options } : {}),
    ...(request.prompt ? { prompt: request.prompt } : {}),
    ...(request.max_tokens ? { max_tokens: request.max_tokens } : {}),
    ...(request.json_schema ? { json_schema: request.json_schema } : {}),
  };
}

/**
 * Regular files under `dir`, depth first in sorted order, as the path under the folder and the
 * resolved path read; a symlink is followed only when its target stays inside the root.
 */
async function* walkFiles(
  dir: string,
  inside: (path: string) => boolean,
  depth = 0,
): AsyncGenerator<{ path: string; real: string }> {
  // Why 32: deeper trees are almost certainly a symlink loop inside the root.
  if (depth > 32) return;
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const path = join(dir, name);
    const real = await realpath(path).catch(() => undefined);
    if (!real || !inside(real)) continue;
    const stats = await lstat(real);
    if (stats.isDirectory()) {
      for await (const child of walkFiles(real, inside, depth + 1))
        yield { path: join(path, relative(real, child.path)), real: child.real };
    } else if (stats.isFile()) yield { path, real };
  }
}
