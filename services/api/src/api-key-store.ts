import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { newApiKeyId, redisKeys } from '@gembatch/contracts';

/**
 * Random bytes per key: 32 bytes (256 bits) cannot be guessed or brute-forced, which is why a
 * single unsalted sha256 is enough to store it (a slow password hash protects low-entropy secrets).
 */
const KEY_RANDOM_BYTES = 32;
/** Marks gembatch keys in configs and secret scanners. */
const KEY_PREFIX = 'gb_';

/** What listing a stored key shows: never the key, nor its digest. */
export interface StoredApiKey {
  id: string;
  tenant: string;
  /** Creation time, ISO 8601. */
  created_at: string;
}

/** A key just created: the only time its plain value exists outside the client. */
export interface CreatedApiKey extends StoredApiKey {
  key: string;
}

interface IndexEntry extends StoredApiKey {
  sha256: string;
}

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * API keys created at run time (`gembatch keys create`), stored in Redis as the sha256 of the key
 * only. A lookup reads Redis on every request, so a revoked key is refused from the next request
 * on (no cache window).
 */
export class ApiKeyStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  /** Creates a key for `tenant` (already validated) and returns it with its id; the plain key is not kept. */
  async create(tenant: string): Promise<CreatedApiKey> {
    const key = `${KEY_PREFIX}${randomBytes(KEY_RANDOM_BYTES).toString('base64url')}`;
    const entry: IndexEntry = { id: newApiKeyId(), tenant, created_at: new Date().toISOString(), sha256: sha256(key) };
    await this.#redis
      .multi()
      .hset(redisKeys.apiKey(this.#prefix, entry.sha256), { id: entry.id, tenant, created_at: entry.created_at })
      .hset(redisKeys.apiKeys(this.#prefix), entry.id, JSON.stringify(entry))
      .exec();
    return { id: entry.id, tenant, created_at: entry.created_at, key };
  }

  /** Every stored key (id, tenant, creation time), oldest first; optionally one tenant's. */
  async list(tenant?: string): Promise<StoredApiKey[]> {
    const entries = Object.values(await this.#redis.hgetall(redisKeys.apiKeys(this.#prefix))).map(
      (json) => JSON.parse(json) as IndexEntry,
    );
    return entries
      .filter((entry) => tenant === undefined || entry.tenant === tenant)
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id))
      .map(({ id, tenant: owner, created_at }) => ({ id, tenant: owner, created_at }));
  }

  /** Revokes a key by id: it stops working at once. Returns the revoked key, or `undefined` for an unknown id. */
  async revoke(id: string): Promise<StoredApiKey | undefined> {
    const json = await this.#redis.hget(redisKeys.apiKeys(this.#prefix), id);
    if (json === null) return undefined;
    const entry = JSON.parse(json) as IndexEntry;
    await this.#redis
      .multi()
      .del(redisKeys.apiKey(this.#prefix, entry.sha256))
      .hdel(redisKeys.apiKeys(this.#prefix), id)
      .exec();
    return { id: entry.id, tenant: entry.tenant, created_at: entry.created_at };
  }

  /** The tenant of a presented key, or `undefined` when no stored key matches. */
  async tenantFor(key: string): Promise<string | undefined> {
    return (await this.#redis.hget(redisKeys.apiKey(this.#prefix, sha256(key)), 'tenant')) ?? undefined;
  }
}
