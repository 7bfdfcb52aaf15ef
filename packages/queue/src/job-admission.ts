import { redisKeys, type ExtractJobData, type GenerateJobData, type QueueName } from '@gembatch/contracts';
import type { BulkSubmission, JobProducer, SubmitOptions } from './job-producer.ts';

/** A plain job waiting for a window slot, as stored in `redisKeys.pendingJobData`. */
export interface PendingSubmission {
  queue: QueueName;
  data: ExtractJobData | GenerateJobData;
  priority?: number;
}

/** Where `JobAdmission.submit` put a job. */
export type Admission = 'admitted' | 'pending';

export interface JobAdmissionOptions {
  /** Adds admitted jobs to their queues (`submit`, `submitBulk`) and owns the connection used here. */
  producer: Pick<JobProducer, 'redis' | 'prefix' | 'retentionSeconds' | 'submit' | 'submitBulk' | 'queues'>;
  /** Plain jobs and batch requests in the queues at once, all tenants together (`GEMBATCH_BATCH_WINDOW`). */
  window: number;
}

/**
 * Either admits the job at once (room in the window and no older pending job of the tenant: it
 * takes a slot in the admitted set) or parks it: its submission in the pending hash, its id at the
 * end of the tenant's pending list, the tenant in the pending set, and its id in the tenant's job
 * index (so it lists and reads as `queued`). One script: two submissions cannot both take the last slot.
 * KEYS: tenant's pending list, pending hash, pending tenants, admitted set, batch in-flight count, tenant's job index.
 * ARGV: job id, submission JSON, window, now ms, tenant, submitted_at, index cutoff ms, retention s.
 */
const ADMIT_OR_PARK_SCRIPT = `
if redis.call('LLEN', KEYS[1]) == 0 then
  local used = redis.call('ZCARD', KEYS[4]) + tonumber(redis.call('GET', KEYS[5]) or '0')
  if used < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
    return 1
  end
end
redis.call('ZADD', KEYS[6], ARGV[6], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', ARGV[7])
redis.call('EXPIRE', KEYS[6], ARGV[8])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[5])
return 0
`;

/**
 * Takes up to n ids off the front of a tenant's pending list into the admitted set and returns
 * them with their submissions (id, JSON, id, JSON…). The submissions stay in the pending hash until
 * the jobs are in their queues (`CONFIRM_SCRIPT`), so a crash in between loses none.
 * KEYS: tenant's pending list, pending hash, pending tenants, admitted set. ARGV: n, now ms, tenant.
 */
const CLAIM_SCRIPT = `
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local data = redis.call('HGET', KEYS[2], id)
  if data then
    redis.call('ZADD', KEYS[4], ARGV[2], id)
    table.insert(out, id)
    table.insert(out, data)
  end
end
if #ids > 0 then redis.call('LTRIM', KEYS[1], #ids, -1) end
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[3]) end
return out
`;

/**
 * Drops the submissions of jobs now in their queues; answers the ids whose submission was already
 * gone (cancelled or deleted while being admitted), which must be taken out of the queues again.
 * KEYS: pending hash. ARGV: ids.
 */
const CONFIRM_SCRIPT = `
local gone = {}
for i = 1, #ARGV do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 0 then table.insert(gone, ARGV[i]) end
end
return gone
`;

/**
 * Takes a job out of its tenant's pending list (a cancel or delete before it was admitted).
 * KEYS: tenant's pending list, pending hash, pending tenants. ARGV: job id, tenant. Answers 1 if it was pending.
 */
const UNPARK_SCRIPT = `
local removed = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('LREM', KEYS[1], 0, ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return removed
`;

/**
 * Fair share for plain jobs (`POST /v1/jobs`). BullMQ's queues are FIFO, so a tenant that submits
 * 10,000 jobs would hold every other tenant's work behind them. Instead, plain jobs and batch
 * requests share one window of slots in the queues (`GEMBATCH_BATCH_WINDOW`): a job is admitted
 * at submission while the window has room and its tenant has nothing pending; otherwise it waits in
 * its tenant's pending list in Redis (status `queued`), and the batch feeder hands out free slots
 * round-robin over tenants (then over each tenant's batches and its plain jobs). Admitted jobs stay
 * in the admitted set until they end (completed, failed, cancelled, deleted), which the feeder
 * reads from queue events and a periodic reconcile.
 */
export class JobAdmission {
  readonly #producer: JobAdmissionOptions['producer'];
  readonly #window: number;

  constructor(options: JobAdmissionOptions) {
    this.#producer = options.producer;
    this.#window = options.window;
  }

  /** The job's tenant index, retention and queue come from the producer; `options.priority` is kept for when it is admitted. */
  async submit(
    data: ExtractJobData | GenerateJobData,
    queue: QueueName,
    options: SubmitOptions = {},
  ): Promise<Admission> {
    const { redis, prefix, retentionSeconds } = this.#producer;
    const submission: PendingSubmission = {
      queue,
      data,
      ...(options.priority !== undefined ? { priority: options.priority } : {}),
    };
    const now = Date.now();
    const admitted = (await redis.eval(
      ADMIT_OR_PARK_SCRIPT,
      6,
      redisKeys.pendingJobs(prefix, data.tenant),
      redisKeys.pendingJobData(prefix),
      redisKeys.pendingTenants(prefix),
      redisKeys.admittedJobs(prefix),
      redisKeys.admissionBatchInflight(prefix),
      redisKeys.tenantJobs(prefix, data.tenant),
      data.job_id,
      JSON.stringify(submission),
      this.#window,
      now,
      data.tenant,
      data.submitted_at,
      now - retentionSeconds * 1000,
      retentionSeconds,
    )) as number;
    if (admitted !== 1) return 'pending';
    try {
      await this.#producer.submit(data, queue, options);
    } catch (error) {
      await redis.zrem(redisKeys.admittedJobs(prefix), data.job_id).catch(() => undefined);
      throw error;
    }
    return 'admitted';
  }

  /** Tenants with pending plain jobs and how many each has. */
  async pendingCounts(): Promise<Map<string, number>> {
    const { redis, prefix } = this.#producer;
    const tenants = await redis.smembers(redisKeys.pendingTenants(prefix));
    const counts = await Promise.all(tenants.map((tenant) => redis.llen(redisKeys.pendingJobs(prefix, tenant))));
    return new Map(tenants.map((tenant, i) => [tenant, counts[i] ?? 0] as const).filter(([, count]) => count > 0));
  }

  /** Ids of the plain jobs that hold window slots now (admitted, not yet seen to end). */
  admittedIds(): Promise<string[]> {
    return this.#producer.redis.zrange(redisKeys.admittedJobs(this.#producer.prefix), 0, -1);
  }

  /** Frees the slots of jobs that ended. */
  async release(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length > 0) await this.#producer.redis.zrem(redisKeys.admittedJobs(this.#producer.prefix), ...jobIds);
  }

  /** Tells submissions how many slots batch requests hold (expires with the feeder: a feeder that stopped holds none). */
  async reportBatchInflight(count: number, ttlMs: number): Promise<void> {
    await this.#producer.redis.set(redisKeys.admissionBatchInflight(this.#producer.prefix), String(count), 'PX', ttlMs);
  }

  /** Admits the `count` oldest pending jobs of a tenant into their queues; resolves their ids. */
  async admitPending(tenant: string, count: number): Promise<string[]> {
    const { redis, prefix } = this.#producer;
    if (count <= 0) return [];
    const claimed = (await redis.eval(
      CLAIM_SCRIPT,
      4,
      redisKeys.pendingJobs(prefix, tenant),
      redisKeys.pendingJobData(prefix),
      redisKeys.pendingTenants(prefix),
      redisKeys.admittedJobs(prefix),
      count,
      Date.now(),
      tenant,
    )) as string[];
    const submissions = new Map<string, string>();
    for (let i = 0; i + 1 < claimed.length; i += 2) submissions.set(claimed[i] as string, claimed[i + 1] as string);
    await this.#addAndConfirm(submissions);
    return [...submissions.keys()];
  }

  /**
   * Finishes admissions a crash interrupted: admitted jobs whose submission is still in the pending
   * hash are added (again: adding an existing id is a no-op) and confirmed. Resolves how many.
   */
  async resumeAdmissions(admittedIds: readonly string[]): Promise<number> {
    if (admittedIds.length === 0) return 0;
    const raw = await this.#producer.redis.hmget(redisKeys.pendingJobData(this.#producer.prefix), ...admittedIds);
    const submissions = new Map<string, string>();
    admittedIds.forEach((id, i) => {
      const value = raw[i];
      if (typeof value === 'string') submissions.set(id, value);
    });
    await this.#addAndConfirm(submissions);
    return submissions.size;
  }

  async #addAndConfirm(submissions: ReadonlyMap<string, string>): Promise<void> {
    if (submissions.size === 0) return;
    const { redis, prefix, queues } = this.#producer;
    const bulk: BulkSubmission[] = [...submissions.values()].map((json) => {
      const { queue, data, priority } = JSON.parse(json) as PendingSubmission;
      return { queue, data, ...(priority !== undefined ? { priority } : {}) };
    });
    await this.#producer.submitBulk(bulk);
    const gone = (await redis.eval(
      CONFIRM_SCRIPT,
      1,
      redisKeys.pendingJobData(prefix),
      ...submissions.keys(),
    )) as string[];
    // Gone because it was cancelled while being admitted (not because a replaced feeder confirmed it
    // first): take it out again; a worker that took it a moment ago is stopped by the cancel marker.
    for (const id of gone) {
      const queue = bulk.find((b) => b.data.job_id === id)?.queue;
      if (queue && (await redis.exists(redisKeys.cancelled(prefix, id))) === 1)
        await queues[queue].remove(id).catch(() => undefined);
    }
  }
}

/**
 * A pending plain job's submission from its field of `redisKeys.pendingJobData`, or `undefined`
 * once it is admitted (or was never pending). The field stays until the job is in its queue.
 */
export function parsePendingJob(raw: string | null): PendingSubmission | undefined {
  return raw ? (JSON.parse(raw) as PendingSubmission) : undefined;
}

/** Takes a pending job out of its tenant's list (cancel, delete). Resolves whether it was pending. */
export async function unparkJob(
  store: { redis: JobProducer['redis']; prefix: string },
  jobId: string,
  tenant: string,
): Promise<boolean> {
  const removed = (await store.redis.eval(
    UNPARK_SCRIPT,
    3,
    redisKeys.pendingJobs(store.prefix, tenant),
    redisKeys.pendingJobData(store.prefix),
    redisKeys.pendingTenants(store.prefix),
    jobId,
    tenant,
  )) as number;
  return removed === 1;
}
