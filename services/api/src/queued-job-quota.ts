import type { Redis } from 'ioredis';
import { GembatchError, redisKeys } from '@gembatch/contracts';
import { getJobView, type JobQueues } from '@gembatch/queue';

/**
 * Admits ids into a tenant's open-jobs set only if the set stays within the limit, all or none.
 * KEYS: open set. ARGV: limit, score, ids… Answers the count after, or -1 when refused.
 */
const ADMIT_SCRIPT = `
local limit = tonumber(ARGV[1])
local count = redis.call('ZCARD', KEYS[1])
if count + #ARGV - 2 > limit then return -1 end
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i]) end
return redis.call('ZCARD', KEYS[1])
`;

/** Oldest open entries looked at per refusal: the oldest are the likeliest to have finished (queues are mostly FIFO). */
const PRUNE_BATCH = 200;
/** Why 30 s: long enough for some of a backlog to finish, short enough that a client does not idle. */
const RETRY_AFTER_SECONDS = 30;

/**
 * The per-tenant limit on queued and running jobs (`GEMBATCH_TENANT_MAX_QUEUED_JOBS`). Every
 * admitted job id goes into the tenant's open set; finished jobs leave it lazily: when a tenant is
 * at its limit, its oldest entries are checked and the finished ones removed before refusing.
 * Refusals are 429 `GB_ERR_QUOTA_EXCEEDED` with a `Retry-After`.
 */
export class QueuedJobQuota {
  readonly #queues: JobQueues;
  readonly #redis: Redis;
  readonly #limit: number;

  /** @param limit Jobs a tenant may have open; `0` disables the quota. */
  constructor(queues: JobQueues, limit: number) {
    this.#queues = queues;
    this.#redis = queues.redis;
    this.#limit = limit;
  }

  /** Admits `jobIds` for the tenant, or throws `GB_ERR_QUOTA_EXCEEDED`. Call `release` if the submission then fails. */
  async admit(tenant: string, jobIds: readonly string[]): Promise<void> {
    if (this.#limit <= 0 || jobIds.length === 0) return;
    const key = redisKeys.tenantOpenJobs(this.#queues.prefix, tenant);
    const tryAdmit = async () =>
      (await this.#redis.eval(ADMIT_SCRIPT, 1, key, this.#limit, Date.now(), ...jobIds)) as number;
    if ((await tryAdmit()) >= 0) return;
    await this.#prune(tenant, key);
    if ((await tryAdmit()) >= 0) return;
    throw new GembatchError(
      'GB_ERR_QUOTA_EXCEEDED',
      `this tenant has ${this.#limit} jobs queued or running, its limit (GEMBATCH_TENANT_MAX_QUEUED_JOBS); retry once some have finished`,
      {
        details: { limit: this.#limit, retryAfterSeconds: RETRY_AFTER_SECONDS },
      },
    );
  }

  /** Takes ids out of the tenant's open set (a failed submission, a deleted job). */
  async release(tenant: string, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length > 0) await this.#redis.zrem(redisKeys.tenantOpenJobs(this.#queues.prefix, tenant), ...jobIds);
  }

  async #prune(tenant: string, key: string): Promise<void> {
    const ids = await this.#redis.zrange(key, 0, PRUNE_BATCH - 1);
    const views = await Promise.all(
      ids.map((id) =>
        getJobView(this.#queues, id, tenant).catch((error: unknown) =>
          error instanceof GembatchError && error.code === 'GB_ERR_NOT_FOUND' ? undefined : Promise.reject(error),
        ),
      ),
    );
    const finished = ids.filter((_, i) => {
      const status = views[i]?.status;
      return status === undefined || status === 'completed' || status === 'failed' || status === 'cancelled';
    });
    if (finished.length > 0) await this.#redis.zrem(key, ...finished);
  }
}
