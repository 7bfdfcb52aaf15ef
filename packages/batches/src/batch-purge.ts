import type { Redis } from 'ioredis';
import { redisKeys } from '@gembatch/contracts';
import { deleteJob, type JobBlobCleaner, type JobQueues } from '@gembatch/queue';
import type { BatchFiles } from './request-mapping.ts';
import { batchReferrer } from './batch-service.ts';

/** Batch jobs deleted at once: enough to overlap Redis round trips, few enough not to crowd other requests. */
const PURGE_CONCURRENCY = 8;
/** Keys per SCAN step (a hint to Redis, not a limit). */
const SCAN_COUNT = 500;

export interface BatchPurgeDeps {
  redis: Redis;
  prefix: string;
  /** The job queues (a `JobProducer`): a batch's jobs are not in the tenant's job index, so they are deleted here. */
  queues: JobQueues;
  /** Releases the inline texts of deleted jobs. */
  cleaner: JobBlobCleaner;
  /** Its `references`: each batch holds its input's bytes until it ends. */
  files: Pick<BatchFiles, 'references'>;
  /** Called for each purged batch id (the server deletes the batch's webhook deliveries). */
  onPurged?: (batchId: string) => Promise<void>;
}

/**
 * Deletes every batch of a tenant, whatever its status: the record first together with its entry
 * in the feeder's active set (so the feeder stops feeding it, and its guarded writes find nothing
 * to write to), then every job it put in the queues (cancelling running ones), its hold on the
 * input's bytes, its per-request hashes, the tenant's batch index and the tenant's idempotency keys
 * (every scope). Input, output and error files are ordinary files of the tenant, deleted by the file
 * purge. Idempotent. Resolves `{batches}`: how many batch records were deleted.
 */
export async function purgeTenantBatches(deps: BatchPurgeDeps, tenant: string): Promise<{ batches: number }> {
  const { redis, prefix } = deps;
  const index = redisKeys.tenantBatches(prefix, tenant);
  const ids = new Set(await redis.zrange(index, 0, -1));
  // A batch whose index entry is missing still shows up in the active set with its tenant.
  for (const id of await redis.zrange(redisKeys.activeBatches(prefix), 0, -1))
    if ((await redis.hget(redisKeys.batch(prefix, id), 'tenant')) === tenant) ids.add(id);
  let batches = 0;
  for (const id of ids) {
    const batchKey = redisKeys.batch(prefix, id);
    const [owner, inputSha] = await redis.hmget(batchKey, 'tenant', 'input_sha256');
    if (owner !== null && owner !== tenant) continue;
    const [[, removed]] = (await redis.multi().del(batchKey).zrem(redisKeys.activeBatches(prefix), id).exec()) as [
      [unknown, number],
    ];
    if (removed === 1) batches += 1;
    const requests = await redis.hvals(redisKeys.batchRequests(prefix, id));
    const jobIds = [...new Set(requests.filter((value) => value.startsWith('job_')))];
    for (let i = 0; i < jobIds.length; i += PURGE_CONCURRENCY) {
      const results = await Promise.allSettled(
        jobIds.slice(i, i + PURGE_CONCURRENCY).map((jobId) => deleteJob(deps.queues, jobId, tenant, deps.cleaner)),
      );
      const failed = results.find(
        (r): r is PromiseRejectedResult =>
          r.status === 'rejected' && (r.reason as { code?: string })?.code !== 'GB_ERR_NOT_FOUND',
      );
      if (failed) throw failed.reason;
    }
    if (inputSha) await deps.files.references.release(inputSha, batchReferrer(id));
    await deleteBatchKeys(redis, prefix, id);
    await deps.onPurged?.(id);
  }
  await redis.del(index);
  // `<prefix>:idempotency:<tenant>:` + any scope and key (the two trailing empty parts and their separator cut off);
  // tenant ids hold no `:` (`TenantId`), so no other tenant's keys match.
  await deleteMatching(redis, `${escapeGlob(redisKeys.idempotency(prefix, tenant, '', '').slice(0, -1))}*`);
  return { batches };
}

/** Every per-batch key but the record: request map, outcomes, in-flight map, custom_id set. */
export async function deleteBatchKeys(redis: Redis, prefix: string, batchId: string): Promise<void> {
  await redis.del(
    redisKeys.batch(prefix, batchId),
    redisKeys.batchRequests(prefix, batchId),
    redisKeys.batchOutcomes(prefix, batchId),
    redisKeys.batchInflight(prefix, batchId),
    redisKeys.batchCustomIds(prefix, batchId),
  );
}

async function deleteMatching(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** A literal for a SCAN MATCH pattern (tenant names may hold `*`, `?`, `[` or `\`). */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
