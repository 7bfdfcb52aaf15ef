import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { JOB_ID_PATTERN, redisKeys, errorMessage } from '@gembatch/contracts';
import type { JobQueues } from '@gembatch/queue';
import type { BlobStore, FileStore } from '@gembatch/storage';
import type { Logger } from '@gembatch/telemetry';
import type { AuditLog } from './audit-log.ts';

/** Why 1 hour: an upload in progress writes its `.part` file with every chunk, so one untouched this long belongs to a killed upload. */
export const STALE_PARTIAL_MS = 60 * 60 * 1000;
/**
 * Why 1 day past the job retention: a derived blob (extracted document, chunk text, result) outlives the job that wrote
 * it by at most the retention; a day of margin covers jobs that waited long in a queue.
 */
const DERIVED_BLOB_MARGIN_MS = 24 * 60 * 60 * 1000;
/** Why hourly: walking the blob directory stats every blob, too costly for every sweep. */
const BLOB_WALK_EVERY_MS = 60 * 60 * 1000;
/** A job still alive when its text reference is due is looked at again this much later. */
const JOB_RECHECK_MS = 60 * 60 * 1000;
/** Work items per step, so one sweep holds nothing large in memory. */
const BATCH = 500;
/** Why 10 min: one sweep of a large store may take minutes; two API replicas should not sweep at once. */
const SWEEP_LOCK_MS = 10 * 60 * 1000;

/** Deletes the lock only if it still holds our token. KEYS: lock. ARGV: token. */
const UNLOCK_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface RetentionSweeperDeps {
  redis: Redis;
  prefix: string;
  files: FileStore;
  blobs: BlobStore;
  queues: JobQueues;
  audit: AuditLog;
  log: Logger;
  /** Job retention (seconds): derived blobs older than this plus a day, that nothing references, are deleted. */
  jobRetentionSeconds: number;
}

/** What one sweep removed. */
export interface SweepReport {
  expiredFiles: number;
  releasedJobTexts: number;
  collectedBlobs: number;
  stalePartials: number;
  auditTrimmed: number;
}

/**
 * Retention: deletes expired files (records, then bytes by reference), releases inline-text
 * references of jobs that no longer exist, collects unreferenced derived blobs past the job
 * retention, removes `.part` files of killed uploads, and trims the audit stream by age. Runs once
 * at start-up and then every interval; a Redis lock keeps API replicas from sweeping at once.
 */
export class RetentionSweeper {
  readonly #deps: RetentionSweeperDeps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #lastBlobWalk = 0;

  constructor(deps: RetentionSweeperDeps) {
    this.#deps = deps;
  }

  /** Sweeps now and then every `intervalSeconds` (0: never). */
  start(intervalSeconds: number): void {
    if (intervalSeconds <= 0 || this.#timer) return;
    const tick = () => {
      this.#running ??= this.sweepLocked()
        .catch((error: unknown) => this.#deps.log.warn({ err: errorMessage(error) }, 'retention sweep failed'))
        .finally(() => {
          this.#running = undefined;
        });
    };
    this.#timer = setInterval(tick, intervalSeconds * 1000);
    this.#timer.unref();
    tick();
  }

  /** Stops the timer and waits for a sweep in progress. Idempotent. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One sweep, unless another process holds the sweep lock (then `undefined`). */
  async sweepLocked(now = Date.now()): Promise<SweepReport | undefined> {
    const lock = `${this.#deps.prefix}:sweep:lock`;
    const token = randomUUID();
    if ((await this.#deps.redis.set(lock, token, 'PX', SWEEP_LOCK_MS, 'NX')) !== 'OK') return undefined;
    try {
      return await this.sweep(now);
    } finally {
      // Only our own lock: past its expiry another replica may hold a new one.
      await this.#deps.redis.eval(UNLOCK_SCRIPT, 1, lock, token);
    }
  }

  /** One sweep, now. */
  async sweep(now = Date.now()): Promise<SweepReport> {
    const { files, blobs, audit, log } = this.#deps;
    const report: SweepReport = {
      expiredFiles: 0,
      releasedJobTexts: 0,
      collectedBlobs: 0,
      stalePartials: 0,
      auditTrimmed: 0,
    };

    for (;;) {
      const expired = await files.deleteExpired(now);
      for (const record of expired)
        await audit
          .append({ action: 'file.expire', tenant: record.tenant, actor: 'system', resource: record.id })
          .catch(() => undefined);
      report.expiredFiles += expired.length;
      if (expired.length < BATCH) break;
    }

    const refs = files.references;
    for (;;) {
      const due = await refs.dueJobReferences(now, BATCH);
      for (const { jobId, sha256 } of due) {
        if (await this.#jobExists(jobId)) await refs.postponeJob(jobId, sha256, now + JOB_RECHECK_MS);
        else {
          await refs.releaseJob(jobId, sha256);
          report.releasedJobTexts += 1;
        }
      }
      if (due.length < BATCH) break;
    }

    report.stalePartials = await blobs.removeStalePartials(STALE_PARTIAL_MS);

    if (now - this.#lastBlobWalk >= BLOB_WALK_EVERY_MS) {
      this.#lastBlobWalk = now;
      const cutoff = now - this.#deps.jobRetentionSeconds * 1000 - DERIVED_BLOB_MARGIN_MS;
      for await (const entry of blobs.list()) {
        if (entry.modifiedMs < cutoff && (await refs.collectIfUnreferenced(entry.sha256))) report.collectedBlobs += 1;
      }
    }

    report.auditTrimmed = await audit.trim(now);
    if (Object.values(report).some((n) => n > 0)) log.info(report, 'retention sweep');
    return report;
  }

  /** Whether any stage of the job, or its cancel marker, is still in Redis. */
  async #jobExists(jobId: string): Promise<boolean> {
    if (!JOB_ID_PATTERN.test(jobId)) return false;
    const { queues, redis, prefix } = this.#deps.queues;
    const states = await Promise.all(Object.values(queues).map((queue) => queue.getJobState(jobId)));
    if (states.some((state) => state !== 'unknown')) return true;
    return (await redis.exists(redisKeys.cancelled(prefix, jobId))) === 1;
  }
}
