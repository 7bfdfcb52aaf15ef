import type { Redis } from 'ioredis';
import { BATCH_ID_PATTERN, GembatchError, redisKeys } from '@gembatch/contracts';
import type {
  BatchEndpoint,
  BatchObject,
  BatchStatus,
  BatchStatusTimes,
  BatchValidationError,
} from './batch-schemas.ts';

/**
 * A batch as stored: one Redis hash per batch (`redisKeys.batch`). Counters are updated with
 * HINCRBY by the feeder; timestamps are unix milliseconds here and seconds in the public object.
 */
export interface BatchRecord extends BatchStatusTimes {
  id: string;
  tenant: string;
  status: BatchStatus;
  endpoint: BatchEndpoint;
  input_file_id: string;
  /** Blob address of the input JSONL (the feeder reads it from `cursor_byte`). */
  input_sha256: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  webhook_url: string | null;
  created_at: number;
  expires_at: number;
  /** Request lines in the input (known once validated). */
  total: number;
  completed: number;
  failed: number;
  output_file_id: string | null;
  error_file_id: string | null;
  errors: BatchValidationError[] | null;
  /** Index (0-based) of the next input line the feeder has not handed to the queues. */
  cursor_line: number;
  /** Byte offset of that line in the input file. */
  cursor_byte: number;
  /** 1-based physical line number of that line (blank lines are not requests). */
  cursor_line_number: number;
  /** Once the status is `cancelling` or the window has passed: why the batch is being wound down. */
  ending: 'cancelled' | 'expired' | null;
  /** Prompt and generated tokens of the batch's finished jobs (HINCRBY by the feeder). */
  input_tokens: number;
  output_tokens: number;
}

const NUMERIC = [
  'created_at',
  'in_progress_at',
  'expires_at',
  'finalizing_at',
  'completed_at',
  'failed_at',
  'expired_at',
  'cancelling_at',
  'cancelled_at',
  'total',
  'completed',
  'failed',
  'cursor_line',
  'cursor_byte',
  'cursor_line_number',
  'input_tokens',
  'output_tokens',
] as const;
const JSON_FIELDS = ['metadata', 'errors'] as const;

/** Fields as Redis strings; `null` is stored as an absent field. */
export function encodeBatchFields(fields: Partial<BatchRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === null || value === undefined) continue;
    out[name] =
      (JSON_FIELDS as readonly string[]).includes(name) || typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
  }
  return out;
}

/** A stored hash back into a record; `undefined` for an empty hash. */
export function decodeBatchRecord(hash: Record<string, string>): BatchRecord | undefined {
  if (!hash.id) return undefined;
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(hash)) record[name] = value;
  for (const name of NUMERIC)
    record[name] =
      hash[name] === undefined
        ? name === 'cursor_line_number'
          ? 1
          : ['total', 'completed', 'failed', 'cursor_line', 'cursor_byte', 'input_tokens', 'output_tokens'].includes(
                name,
              )
            ? 0
            : null
        : Number(hash[name]);
  for (const name of JSON_FIELDS) record[name] = hash[name] === undefined ? null : JSON.parse(hash[name]);
  for (const name of ['output_file_id', 'error_file_id', 'webhook_url', 'ending'] as const)
    record[name] = hash[name] ?? null;
  return record as unknown as BatchRecord;
}

const seconds = (ms: number | null): number | null => (ms === null ? null : Math.floor(ms / 1000));

/** The public OpenAI-shaped object of a record. */
export function toBatchObject(record: BatchRecord): BatchObject {
  return {
    id: record.id,
    object: 'batch',
    endpoint: record.endpoint,
    errors: record.errors && record.errors.length > 0 ? { object: 'list', data: record.errors } : null,
    input_file_id: record.input_file_id,
    completion_window: record.completion_window,
    status: record.status,
    output_file_id: record.output_file_id,
    error_file_id: record.error_file_id,
    created_at: seconds(record.created_at) as number,
    in_progress_at: seconds(record.in_progress_at),
    expires_at: seconds(record.expires_at),
    finalizing_at: seconds(record.finalizing_at),
    completed_at: seconds(record.completed_at),
    failed_at: seconds(record.failed_at),
    expired_at: seconds(record.expired_at),
    cancelling_at: seconds(record.cancelling_at),
    cancelled_at: seconds(record.cancelled_at),
    request_counts: { total: record.total, completed: record.completed, failed: record.failed },
    metadata: record.metadata,
    webhook_url: record.webhook_url,
    usage: {
      input_tokens: record.input_tokens,
      output_tokens: record.output_tokens,
      total_tokens: record.input_tokens + record.output_tokens,
    },
  };
}

/** Batch records in Redis: create, read, list, and status changes. */
export class BatchStore {
  readonly redis: Redis;
  readonly prefix: string;
  /** How long a finished batch's record and per-request data stay (seconds). */
  readonly retentionSeconds: number;

  constructor(redis: Redis, prefix: string, retentionSeconds: number) {
    this.redis = redis;
    this.prefix = prefix;
    this.retentionSeconds = retentionSeconds;
  }

  /** Stores a new record, indexes it for its tenant and hands it to the feeder (active set). */
  async create(record: BatchRecord): Promise<void> {
    await this.redis
      .multi()
      .hset(redisKeys.batch(this.prefix, record.id), encodeBatchFields(record))
      .zadd(redisKeys.tenantBatches(this.prefix, record.tenant), record.created_at, record.id)
      .zadd(redisKeys.activeBatches(this.prefix), record.created_at, record.id)
      .exec();
  }

  /** The record, whoever owns it; `undefined` when unknown. */
  async read(batchId: string): Promise<BatchRecord | undefined> {
    if (!BATCH_ID_PATTERN.test(batchId)) return undefined;
    return decodeBatchRecord(await this.redis.hgetall(redisKeys.batch(this.prefix, batchId)));
  }

  /** The tenant's record, or `GB_ERR_NOT_FOUND`. */
  async get(tenant: string, batchId: string): Promise<BatchRecord> {
    const record = await this.read(batchId);
    if (!record || record.tenant !== tenant)
      throw new GembatchError('GB_ERR_NOT_FOUND', `no batch ${batchId.slice(0, 100)}`);
    return record;
  }

  /** Sets fields (never the counters, which only HINCRBY touches); a no-op once the batch is deleted. */
  async update(batchId: string, fields: Partial<BatchRecord>): Promise<void> {
    const encoded = Object.entries(encodeBatchFields(fields)).flat();
    if (encoded.length > 0)
      await writeIfBatchExists(this.redis, this.prefix, batchId, [
        ['HSET', redisKeys.batch(this.prefix, batchId), ...encoded],
      ]);
  }

  /**
   * Moves a batch from one of `from` to `to` atomically (a Lua check-and-set), setting `fields`
   * too. Returns false when the batch was not in one of `from` (someone else moved it first).
   */
  async transition(
    batchId: string,
    from: readonly BatchStatus[],
    to: BatchStatus,
    fields: Partial<BatchRecord> = {},
  ): Promise<boolean> {
    const encoded = encodeBatchFields({ ...fields, status: to });
    const args = [JSON.stringify(from), ...Object.entries(encoded).flat()];
    const moved = (await this.redis.eval(
      TRANSITION_SCRIPT,
      1,
      redisKeys.batch(this.prefix, batchId),
      ...args,
    )) as number;
    return moved === 1;
  }

  /** Newest first, OpenAI-style paging: `after` is the id of the last batch of the previous page. */
  async list(
    tenant: string,
    options: { after?: string; limit?: number } = {},
  ): Promise<{ records: BatchRecord[]; hasMore: boolean }> {
    const limit = Math.max(1, Math.min(options.limit ?? 20, 100));
    const index = redisKeys.tenantBatches(this.prefix, tenant);
    let start = 0;
    if (options.after) {
      const rank = await this.redis.zrevrank(index, options.after);
      if (rank === null) return { records: [], hasMore: false };
      start = rank + 1;
    }
    const ids = await this.redis.zrevrange(index, start, start + limit);
    const records = (await Promise.all(ids.slice(0, limit).map((id) => this.read(id)))).filter(
      (r): r is BatchRecord => r !== undefined && r.tenant === tenant,
    );
    return { records, hasMore: ids.length > limit };
  }

  /** Ids of batches the feeder still drives, oldest first. */
  async activeIds(): Promise<string[]> {
    return this.redis.zrange(redisKeys.activeBatches(this.prefix), 0, -1);
  }

  /** Takes a batch off the active set and lets its per-request data expire with the retention window. */
  async retire(batchId: string): Promise<void> {
    const ttl = this.retentionSeconds;
    await this.redis
      .multi()
      .zrem(redisKeys.activeBatches(this.prefix), batchId)
      .expire(redisKeys.batch(this.prefix, batchId), ttl)
      .expire(redisKeys.batchRequests(this.prefix, batchId), ttl)
      .expire(redisKeys.batchOutcomes(this.prefix, batchId), ttl)
      .del(redisKeys.batchInflight(this.prefix, batchId), redisKeys.batchCustomIds(this.prefix, batchId))
      .exec();
  }
}

/** One Redis write of `writeIfBatchExists`: command, key, arguments. */
export type BatchWrite = [command: 'HSET' | 'HDEL' | 'HINCRBY' | 'SADD', key: string, ...args: string[]];

/**
 * Runs `writes` atomically only while the batch's record exists (a Lua check-and-write), so a
 * feeder that is still busy with a batch the tenant purge just deleted cannot bring its keys back.
 * Resolves false when the batch is gone (nothing was written).
 */
export async function writeIfBatchExists(
  redis: Redis,
  prefix: string,
  batchId: string,
  writes: readonly BatchWrite[],
): Promise<boolean> {
  if (writes.length === 0) return (await redis.hexists(redisKeys.batch(prefix, batchId), 'id')) === 1;
  const keys = [redisKeys.batch(prefix, batchId), ...new Set(writes.map(([, key]) => key))];
  const ops = writes.map(([command, key, ...args]) => [command, keys.indexOf(key) + 1, ...args]);
  return ((await redis.eval(GUARDED_WRITE_SCRIPT, keys.length, ...keys, JSON.stringify(ops))) as number) === 1;
}

/** KEYS[1] batch hash, KEYS[2..] written keys; ARGV[1] JSON list of [command, key index, args...]. */
const GUARDED_WRITE_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return 0 end
for _, op in ipairs(cjson.decode(ARGV[1])) do
  local args = {}
  for i = 3, #op do args[#args + 1] = tostring(op[i]) end
  redis.call(op[1], KEYS[op[2]], unpack(args))
end
return 1`;

/** KEYS[1] batch hash; ARGV[1] JSON list of allowed current statuses; ARGV[2..] field/value pairs. */
const TRANSITION_SCRIPT = `
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 0 end
local allowed = cjson.decode(ARGV[1])
for _, status in ipairs(allowed) do
  if status == current then
    local fields = {}
    for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
    redis.call('HSET', KEYS[1], unpack(fields))
    return 1
  end
end
return 0`;
