import type { Redis } from 'ioredis';
import { redisKeys } from '@gembatch/contracts';
import { escapeGlob } from './batch-purge.ts';
import { decodeBatchRecord, type BatchRecord } from './batch-store.ts';

/** Keys per SCAN step while finding the tenants' batch indexes (a hint to Redis, not a limit). */
const SCAN_COUNT = 1000;
/** Most batches on one page (as `GET /v1/batches`). */
const MAX_PAGE = 100;

/**
 * Batches of every tenant, newest first (created_at, then id, descending, as one tenant's
 * ZREVRANGE orders them), for the operator's all-tenants view. There is no global batch index: the
 * tenants' batch indexes (`redisKeys.tenantBatches`) are found with SCAN, and each gives at most one
 * page past the cursor, so a call reads at most `limit + 1` records per tenant. `after` is the id
 * of the last batch of the previous page; an unknown or deleted one gives an empty page. Index
 * entries whose record has expired are skipped, so a page may be shorter than `limit`.
 */
export async function listAllBatches(
  redis: Redis,
  prefix: string,
  options: { after?: string; limit?: number } = {},
): Promise<{ records: BatchRecord[]; hasMore: boolean }> {
  const limit = Math.max(1, Math.min(options.limit ?? 20, MAX_PAGE));
  let cursor: { score: number; id: string } | undefined;
  if (options.after) {
    const hash = await redis.hgetall(redisKeys.batch(prefix, options.after));
    const record = decodeBatchRecord(hash);
    if (!record) return { records: [], hasMore: false };
    cursor = { score: record.created_at, id: record.id };
  }
  const head = redisKeys.tenantBatches(prefix, '\u0000').split('\u0000');
  const pattern = `${escapeGlob(head[0] ?? '')}*${escapeGlob(head[1] ?? '')}`;
  const candidates: Array<{ id: string; score: number; tenant: string }> = [];
  let scan = '0';
  do {
    const [next, keys] = await redis.scan(scan, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
    scan = next;
    for (const key of new Set(keys)) {
      const tenant = key.slice(head[0]?.length ?? 0, key.length - (head[1]?.length ?? 0));
      // Tenant ids hold no `:` (`TenantId`); anything else the pattern matches is not a batch index.
      if (tenant.includes(':') || redisKeys.tenantBatches(prefix, tenant) !== key) continue;
      // Equal scores sort by id, so entries tied with the cursor are fetched too and filtered below.
      const ties = cursor ? await redis.zcount(key, cursor.score, cursor.score) : 0;
      const entries = await redis.zrevrangebyscore(
        key,
        cursor ? cursor.score : '+inf',
        '-inf',
        'WITHSCORES',
        'LIMIT',
        0,
        limit + 1 + ties,
      );
      for (let i = 0; i + 1 < entries.length; i += 2) {
        const id = entries[i] as string;
        const score = Number(entries[i + 1]);
        if (cursor && score === cursor.score && id >= cursor.id) continue;
        candidates.push({ id, score, tenant });
      }
    }
  } while (scan !== '0');
  candidates.sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const page = candidates.slice(0, limit);
  const records = await Promise.all(
    page.map(async (c) => ({ c, record: decodeBatchRecord(await redis.hgetall(redisKeys.batch(prefix, c.id))) })),
  );
  return {
    records: records.filter(({ c, record }) => record?.tenant === c.tenant).map(({ record }) => record as BatchRecord),
    hasMore: candidates.length > limit,
  };
}
