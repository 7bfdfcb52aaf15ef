import { redisKeys } from '@gembatch/contracts';
import { deleteJob, unparkJob, type JobBlobCleaner, type JobQueues } from '@gembatch/queue';
import type { FileStore } from '@gembatch/storage';
import type { ApiKeyStore } from './api-key-store.ts';

/** Jobs deleted at once during a purge: enough to overlap Redis round trips, few enough not to crowd other requests. */
const PURGE_CONCURRENCY = 8;
/** Index entries read per step. */
const PAGE = 200;

/**
 * Another part of gembatch that keeps tenant data (batches, schedules) and deletes it on a purge;
 * resolves counts by kind (e.g. `{batches: 3}`) for the report.
 */
export type TenantDataPurger = (tenant: string) => Promise<Record<string, number>>;

export interface TenantPurgeReport {
  tenant: string;
  jobs: number;
  files: number;
  keys: number;
  /** Counts from the other purgers, by kind. */
  [kind: string]: number | string;
}

export interface TenantPurgerDeps {
  queues: JobQueues;
  files: FileStore;
  cleaner: JobBlobCleaner;
  keys: ApiKeyStore;
  /**
   * Purgers of data kept elsewhere (schedules, batches), run in order after the keys are revoked
   * and before jobs and files are deleted, so that what creates jobs and files has stopped first.
   */
  others?: readonly TenantDataPurger[];
}

/**
 * `gembatch tenant purge`: deletes every job of a tenant (cancelling running ones; with their chunk
 * data, results and inline texts), every file (bytes by reference: content another tenant also
 * uploaded stays for that tenant), every stored API key, and the tenant's indexes, quota and usage
 * counters; and, first, whatever the registered purgers keep (schedules, batches). Keys from `GEMBATCH_API_KEYS` live in the
 * configuration and must be removed there. Idempotent: a second purge finds nothing.
 */
export class TenantPurger {
  readonly #deps: TenantPurgerDeps;

  constructor(deps: TenantPurgerDeps) {
    this.#deps = deps;
  }

  async purge(tenant: string): Promise<TenantPurgeReport> {
    const { queues, files, cleaner, keys } = this.#deps;
    const report: TenantPurgeReport = { tenant, jobs: 0, files: 0, keys: 0 };

    // Keys first, so the tenant cannot add data while it is being deleted.
    for (const key of await keys.list(tenant)) if (await keys.revoke(key.id)) report.keys += 1;
    // Schedules create batches, batches create jobs and files: stopped and deleted in that order.
    for (const other of this.#deps.others ?? []) Object.assign(report, await other(tenant));

    const index = redisKeys.tenantJobs(queues.prefix, tenant);
    for (;;) {
      const ids = await queues.redis.zrange(index, 0, PAGE - 1);
      if (ids.length === 0) break;
      for (let i = 0; i < ids.length; i += PURGE_CONCURRENCY) {
        const results = await Promise.allSettled(
          ids.slice(i, i + PURGE_CONCURRENCY).map((id) => deleteJob(queues, id, tenant, cleaner)),
        );
        report.jobs += results.filter((r) => r.status === 'fulfilled').length;
        const failed = results.find(
          (r): r is PromiseRejectedResult =>
            r.status === 'rejected' && (r.reason as { code?: string })?.code !== 'GB_ERR_NOT_FOUND',
        );
        if (failed) throw failed.reason;
      }
      // Entries of jobs already gone (expired) are dropped too.
      await queues.redis.zrem(index, ...ids);
    }

    // Jobs still waiting for a fair-share slot whose index entry is gone: out of the tenant's list, submissions with them.
    for (const id of await queues.redis.lrange(redisKeys.pendingJobs(queues.prefix, tenant), 0, -1))
      await unparkJob(queues, id, tenant);

    report.files = await files.deleteAll(tenant);
    await queues.redis.del(
      redisKeys.tenantOpenJobs(queues.prefix, tenant),
      redisKeys.tenantUsage(queues.prefix, tenant),
      index,
      redisKeys.tenantFiles(queues.prefix, tenant),
    );
    return report;
  }
}
