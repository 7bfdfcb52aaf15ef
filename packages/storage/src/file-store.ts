import type { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import {
  DEFAULT_FILE_PURPOSE,
  FILE_ID_PATTERN,
  FileRecord,
  GembatchError,
  newFileId,
  redisKeys,
  type FilePurpose,
} from '@gembatch/contracts';
import { BlobReferences } from './blob-references.ts';
import type { BlobStore } from './blob-store.ts';

/** Why 10,000: OpenAI's default and largest page of `GET /v1/files`; the records are small (a few hundred bytes each). */
export const MAX_FILE_LIST_LIMIT = 10_000;
/** Expired files deleted per sweep call, so one call stays short however far behind it is. */
const EXPIRE_BATCH = 500;

/** The tenant's stored-bytes counter field in `redisKeys.tenantUsage`. */
export const FILE_BYTES_FIELD = 'file_bytes';

/**
 * Deletes a file record with its index entries and usage in one step, and answers the fields the
 * caller needs to release the blob (sha256, tenant, bytes, purpose), or nil when there was nothing
 * (already deleted, or another tenant's file when ARGV[3] is set).
 * KEYS: file hash, expiry set. ARGV: prefix, file id, tenant ('' = any).
 */
const DELETE_SCRIPT = `
local record = redis.call('HMGET', KEYS[1], 'sha256', 'tenant', 'bytes', 'purpose')
if not record[1] then return nil end
if ARGV[3] ~= '' and record[2] ~= ARGV[3] then return nil end
local tenantKey = ARGV[1] .. ':tenant:' .. record[2]
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', tenantKey .. ':files', ARGV[2])
if record[4] then redis.call('ZREM', tenantKey .. ':files:' .. record[4], ARGV[2]) end
local bytes = tonumber(record[3] or '0')
-- A zero-byte file charges nothing; HINCRBY would also refuse Lua's "-0".
if bytes > 0 then
  local left = redis.call('HINCRBY', tenantKey .. ':usage', '${FILE_BYTES_FIELD}', -bytes)
  if left <= 0 then redis.call('HDEL', tenantKey .. ':usage', '${FILE_BYTES_FIELD}') end
end
return record
`;

/**
 * Adds the new file's bytes to its tenant's usage unless that passes the quota (ARGV[2] > 0);
 * answers the usage after, or -1 when refused. KEYS: usage hash. ARGV: bytes, quota.
 */
const CHARGE_SCRIPT = `
local quota = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', KEYS[1], '${FILE_BYTES_FIELD}') or '0')
if quota > 0 and used + tonumber(ARGV[1]) > quota then return -1 end
return redis.call('HINCRBY', KEYS[1], '${FILE_BYTES_FIELD}', ARGV[1])
`;

export interface FileStoreOptions {
  /** Request/response connection; the caller owns and closes it. */
  redis: Redis;
  /** gembatch key prefix (`GEMBATCH_REDIS_PREFIX`). */
  prefix: string;
  /** Where the bytes go; shared with the workers. */
  blobs: BlobStore;
  /** Seconds a file is kept after its upload; then the sweeper deletes it. Defaults to `0`: until deleted. */
  retentionSeconds?: number;
}

/** What `FileStore.create` needs besides the bytes. */
export interface CreateFileOptions {
  tenant: string;
  /** The client's name for it (already cleaned of directories). */
  filename: string;
  /** Defaults to `user_data`. */
  purpose?: FilePurpose;
  /** What the client claimed the type is; never trusted. */
  declaredType?: string;
  /** Largest accepted size; more fails with `GB_ERR_PAYLOAD_TOO_LARGE` and nothing is kept. Defaults to no limit. */
  maxBytes?: number;
  /** The tenant's stored-bytes quota; an upload that would pass it fails with `GB_ERR_QUOTA_EXCEEDED`. Defaults to `0`: none. */
  quotaBytes?: number;
  /** Aborts the write. */
  signal?: AbortSignal;
  /** Seconds until the file expires (OpenAI's `expires_after[seconds]`), never later than the store's retention. Defaults to the retention. */
  expiresInSeconds?: number;
}

/** Bytes stored and referenced under a file id that has no record yet (`FileStore.stage`). */
export interface StagedFile {
  id: string;
  sha256: string;
  bytes: number;
}

/** `FileStore.list` options, as `GET /v1/files` takes them. */
export interface ListFilesOptions {
  /** A file id: the page starts after it (in `order`). */
  after?: string;
  /** Defaults to 10,000 (OpenAI's default), at most 10,000. */
  limit?: number;
  /** By creation time. Defaults to `desc`. */
  order?: 'asc' | 'desc';
  purpose?: FilePurpose;
}

/**
 * Files as the Files API sees them: a Redis hash per record (tenant, sha256, size, name, purpose,
 * times), per-tenant indexes for listing, an expiry index for retention, a per-tenant stored-bytes
 * counter for quotas, and one blob reference (`file:<id>`) per record so shared content is kept
 * while any record needs it. Both the API's routes and internal writers (batch output files) use
 * it: `create` takes a stream or a Buffer.
 */
export class FileStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #blobs: BlobStore;
  readonly #refs: BlobReferences;
  readonly #retentionSeconds: number;

  constructor(options: FileStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#blobs = options.blobs;
    this.#refs = new BlobReferences(options.redis, options.prefix, options.blobs);
    this.#retentionSeconds = options.retentionSeconds ?? 0;
  }

  /** The blob references this store keeps (shared with job deletion and the sweeper). */
  get references(): BlobReferences {
    return this.#refs;
  }

  /**
   * Streams `source` into the blob store (hashing it), references the blob and saves the record.
   * Resolves the record; on any failure nothing is kept (the reference is released again).
   */
  async create(source: Readable | Buffer, options: CreateFileOptions): Promise<FileRecord> {
    const staged = await this.stage(source, options);
    return this.commit(staged, options);
  }

  /**
   * The first half of `create`: stores and references the bytes under a new file id, without a
   * record yet (for multipart uploads whose other fields may follow the file). Follow it with
   * `commit` or `discard`.
   */
  async stage(
    source: Readable | Buffer,
    options: Pick<CreateFileOptions, 'maxBytes' | 'signal'> = {},
  ): Promise<StagedFile> {
    const id = newFileId();
    const referrer = fileReferrer(id);
    let referenced: string | undefined;
    const stored = await this.#blobs
      .put(source, {
        ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        beforeCommit: async (sha256) => {
          await this.#refs.acquire(sha256, referrer);
          referenced = sha256;
        },
      })
      .catch(async (error: unknown) => {
        if (referenced) await this.#refs.release(referenced, referrer);
        throw error;
      });
    return { id, sha256: stored.sha256, bytes: stored.bytes };
  }

  /** Drops staged bytes that will get no record (their blob goes unless something else references it). */
  async discard(staged: StagedFile): Promise<void> {
    await this.#refs.release(staged.sha256, fileReferrer(staged.id));
  }

  /** The second half of `create`: charges the tenant's quota and saves the record. Discards the staged bytes on failure. */
  async commit(staged: StagedFile, options: Omit<CreateFileOptions, 'maxBytes' | 'signal'>): Promise<FileRecord> {
    const { id } = staged;
    try {
      const now = Date.now();
      const limits = [this.#retentionSeconds > 0 ? this.#retentionSeconds : undefined, options.expiresInSeconds].filter(
        (n): n is number => n !== undefined,
      );
      const lifetime = limits.length > 0 ? Math.min(...limits) : undefined;
      const record = FileRecord.parse({
        id,
        tenant: options.tenant,
        sha256: staged.sha256,
        bytes: staged.bytes,
        filename: options.filename,
        ...(options.declaredType ? { declared_type: options.declaredType } : {}),
        purpose: options.purpose ?? DEFAULT_FILE_PURPOSE,
        created_at: Math.floor(now / 1000),
        ...(lifetime !== undefined ? { expires_at: Math.floor(now / 1000) + lifetime } : {}),
      });
      const usageKey = redisKeys.tenantUsage(this.#prefix, record.tenant);
      const charged = (await this.#redis.eval(
        CHARGE_SCRIPT,
        1,
        usageKey,
        record.bytes,
        options.quotaBytes ?? 0,
      )) as number;
      if (charged < 0) {
        throw new GembatchError(
          'GB_ERR_QUOTA_EXCEEDED',
          `file: storing ${record.bytes} more bytes would pass this tenant's quota of ${options.quotaBytes} stored bytes; delete files first`,
          {
            details: { quotaBytes: options.quotaBytes, bytes: record.bytes },
          },
        );
      }
      const fields: Record<string, string> = {};
      for (const [name, value] of Object.entries(record)) if (value !== undefined) fields[name] = String(value);
      const multi = this.#redis
        .multi()
        .hset(redisKeys.file(this.#prefix, id), fields)
        .zadd(redisKeys.tenantFiles(this.#prefix, record.tenant), now, id)
        .zadd(redisKeys.tenantFilesByPurpose(this.#prefix, record.tenant, record.purpose), now, id);
      if (record.expires_at !== undefined) multi.zadd(redisKeys.fileExpiry(this.#prefix), record.expires_at * 1000, id);
      const results = await multi.exec().catch(async (error: unknown) => {
        await this.#redis.hincrby(usageKey, FILE_BYTES_FIELD, -record.bytes).catch(() => undefined);
        throw error;
      });
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
      return record;
    } catch (error) {
      await this.discard(staged).catch(() => undefined);
      throw error;
    }
  }

  /** The tenant's file with this id, or `undefined` (unknown id, malformed id or another tenant's file). */
  async find(tenant: string, fileId: string): Promise<FileRecord | undefined> {
    if (!FILE_ID_PATTERN.test(fileId)) return undefined;
    const record = await this.#read(fileId);
    return record?.tenant === tenant ? record : undefined;
  }

  /** One page of the tenant's files, newest first unless `order: 'asc'`, and whether more follow. */
  async list(tenant: string, options: ListFilesOptions = {}): Promise<{ data: FileRecord[]; has_more: boolean }> {
    const limit = Math.max(1, Math.min(options.limit ?? MAX_FILE_LIST_LIMIT, MAX_FILE_LIST_LIMIT));
    const index = options.purpose
      ? redisKeys.tenantFilesByPurpose(this.#prefix, tenant, options.purpose)
      : redisKeys.tenantFiles(this.#prefix, tenant);
    const descending = options.order !== 'asc';
    let start = 0;
    if (options.after !== undefined) {
      const rank = descending
        ? await this.#redis.zrevrank(index, options.after)
        : await this.#redis.zrank(index, options.after);
      // An unknown cursor (deleted, or not this tenant's) gives an empty page rather than restarting the list.
      if (rank === null) return { data: [], has_more: false };
      start = rank + 1;
    }
    // One more than asked, to know whether another page follows.
    const ids = descending
      ? await this.#redis.zrevrange(index, start, start + limit)
      : await this.#redis.zrange(index, start, start + limit);
    const page = ids.slice(0, limit);
    const records = await Promise.all(page.map((id) => this.#read(id)));
    const gone = page.filter((_, i) => records[i] === undefined);
    if (gone.length > 0) await this.#redis.zrem(index, ...gone);
    return {
      data: records.filter((r): r is FileRecord => r !== undefined && r.tenant === tenant),
      has_more: ids.length > limit,
    };
  }

  /** Bytes the tenant's file records hold (each record counted, shared content too). */
  async storedBytes(tenant: string): Promise<number> {
    return Number((await this.#redis.hget(redisKeys.tenantUsage(this.#prefix, tenant), FILE_BYTES_FIELD)) ?? 0);
  }

  /** The bytes of a record (a stream); `GB_ERR_FILE_NOT_FOUND` when the blob is gone. */
  async open(record: FileRecord): Promise<Readable> {
    return this.#blobs.get(record.sha256);
  }

  /**
   * Deletes the tenant's file: the record and its index entries at once, then its blob reference;
   * the bytes go when no other record references them. Resolves the deleted record, or `undefined`
   * when there was none for this tenant. Jobs that were going to read the file fail with
   * `GB_ERR_FILE_NOT_FOUND` when they reach extraction.
   */
  async delete(tenant: string, fileId: string): Promise<FileRecord | undefined> {
    if (!FILE_ID_PATTERN.test(fileId)) return undefined;
    const record = await this.#read(fileId);
    if (!record || record.tenant !== tenant) return undefined;
    return (await this.#remove(fileId, tenant)) ? record : undefined;
  }

  /** Deletes every file of the tenant (tenant purge); resolves how many. */
  async deleteAll(tenant: string): Promise<number> {
    const index = redisKeys.tenantFiles(this.#prefix, tenant);
    let deleted = 0;
    for (;;) {
      const ids = await this.#redis.zrange(index, 0, EXPIRE_BATCH - 1);
      if (ids.length === 0) break;
      for (const id of ids) if (await this.#remove(id, tenant)) deleted += 1;
      // Entries whose record was already gone.
      await this.#redis.zrem(index, ...ids);
    }
    return deleted;
  }

  /** Deletes files whose retention has passed (up to 500 per call); resolves their records. */
  async deleteExpired(now = Date.now()): Promise<FileRecord[]> {
    const expiry = redisKeys.fileExpiry(this.#prefix);
    const ids = await this.#redis.zrangebyscore(expiry, '-inf', now, 'LIMIT', 0, EXPIRE_BATCH);
    const deleted: FileRecord[] = [];
    for (const id of ids) {
      const record = await this.#read(id);
      if (record && (await this.#remove(id, ''))) deleted.push(record);
      else await this.#redis.zrem(expiry, id);
    }
    return deleted;
  }

  /** Removes the record atomically, then releases its blob reference. Resolves whether a record was removed. */
  async #remove(fileId: string, tenant: string): Promise<boolean> {
    const removed = (await this.#redis.eval(
      DELETE_SCRIPT,
      2,
      redisKeys.file(this.#prefix, fileId),
      redisKeys.fileExpiry(this.#prefix),
      this.#prefix,
      fileId,
      tenant,
    )) as [string, string, string, string] | null;
    if (!removed) return false;
    await this.#refs.release(removed[0], fileReferrer(fileId));
    return true;
  }

  async #read(fileId: string): Promise<FileRecord | undefined> {
    const hash = await this.#redis.hgetall(redisKeys.file(this.#prefix, fileId));
    if (Object.keys(hash).length === 0) return undefined;
    const parsed = FileRecord.safeParse(hash);
    return parsed.success ? parsed.data : undefined;
  }
}

/** A file record's member in its blob's reference set. */
export function fileReferrer(fileId: string): string {
  return `file:${fileId}`;
}
