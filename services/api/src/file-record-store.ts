import type { Redis } from 'ioredis';
import { FILE_ID_PATTERN, FileRecord, redisKeys } from '@gembatch/contracts';

/** Uploaded file records (tenant, sha256, size, name) as Redis hashes; the bytes are in the blob store. */
export class FileRecordStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async save(record: FileRecord): Promise<void> {
    const fields: Record<string, string> = {};
    for (const [name, value] of Object.entries(FileRecord.parse(record))) if (value !== undefined) fields[name] = String(value);
    await this.#redis.hset(redisKeys.file(this.#prefix, record.id), fields);
  }

  /** The tenant's file with this id, or `undefined` (unknown id, malformed id or another tenant's file). */
  async find(tenant: string, fileId: string): Promise<FileRecord | undefined> {
    if (!FILE_ID_PATTERN.test(fileId)) return undefined;
    const hash = await this.#redis.hgetall(redisKeys.file(this.#prefix, fileId));
    const parsed = FileRecord.safeParse({ ...hash, bytes: Number(hash.bytes) });
    return parsed.success && parsed.data.tenant === tenant ? parsed.data : undefined;
  }
}
