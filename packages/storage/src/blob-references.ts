import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { GembatchError, redisKeys } from '@gembatch/contracts';
import type { BlobStore } from './blob-store.ts';

/**
 * Why 30 s: deleting a blob is one unlink; a deleter that dies holding the lock blocks writers of
 * the same content at most this long.
 */
const GC_LOCK_MS = 30_000;
/** How often a writer looks again whether a delete of its content has finished. */
const GC_LOCK_POLL_MS = 25;

/**
 * Adds a reference; answers 1 while a delete of the blob is under way (the writer must wait before
 * it makes the blob visible again).
 * KEYS: refs, gc lock. ARGV: referrer.
 */
const ACQUIRE_SCRIPT = `
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('EXISTS', KEYS[2])
`;

/**
 * Drops a reference; when none is left, takes the delete lock and answers its token (the caller
 * then removes the bytes and unlocks). Answers false while references remain or another deleter
 * holds the lock. KEYS: refs, gc lock. ARGV: referrer ('' to only check), token, lock ms.
 */
const RELEASE_SCRIPT = `
if ARGV[1] ~= '' then redis.call('SREM', KEYS[1], ARGV[1]) end
if redis.call('SCARD', KEYS[1]) > 0 then return false end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return ARGV[2] end
return false
`;

/**
 * A job's reference to its inline text, registered and tracked in one step: the reference (as
 * {@link ACQUIRE_SCRIPT}) and the look-again entry the sweeper releases it by. Answers 1 while a
 * delete of the blob is under way. KEYS: refs, gc lock, job blob refs, job texts. ARGV: referrer,
 * check-at ms, `<job>:<sha256>`, job id, sha256.
 */
const ACQUIRE_FOR_JOB_SCRIPT = `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
return redis.call('EXISTS', KEYS[2])
`;
/** Removes the delete lock if it is still ours. KEYS: gc lock. ARGV: token. */
const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Reference counting of blobs in Redis: each record that needs a blob's bytes (an uploaded file
 * `file:<id>`, a job's inline text `job:<id>`) is a member of the blob's reference set, and the
 * bytes are deleted when the last member goes. The count and the decision are atomic (Lua), and a
 * short lock per blob orders a delete against a concurrent write of the same content: a writer
 * registers its reference before its bytes become visible (`BlobPutOptions.beforeCommit`) and
 * waits while a delete runs, so it never ends up referencing a removed blob.
 */
export class BlobReferences {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #blobs: BlobStore;

  constructor(redis: Redis, prefix: string, blobs: BlobStore) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#blobs = blobs;
  }

  /**
   * Registers `referrer` on the blob; waits (up to the lock's 30 s) while a delete of it is under
   * way. Use it as a put's `beforeCommit`, or after checking the blob exists.
   */
  async acquire(sha256: string, referrer: string): Promise<void> {
    await this.#untilNoDelete(sha256, () =>
      this.#redis.eval(ACQUIRE_SCRIPT, 2, this.#refsKey(sha256), this.#lockKey(sha256), referrer),
    );
  }

  /**
   * {@link acquire} for job `jobId`'s inline text, which also remembers the reference to be looked at
   * from `checkAtMs` on: the sweeper releases it once the job no longer exists. One script, so a
   * job's text costs one Redis call (and a put that fails after it leaves a reference the sweeper
   * still finds).
   */
  async acquireForJob(sha256: string, jobId: string, checkAtMs: number): Promise<void> {
    await this.#untilNoDelete(sha256, () =>
      this.#redis.eval(
        ACQUIRE_FOR_JOB_SCRIPT,
        4,
        this.#refsKey(sha256),
        this.#lockKey(sha256),
        redisKeys.jobBlobRefs(this.#prefix),
        redisKeys.jobTexts(this.#prefix),
        jobReferrer(jobId),
        checkAtMs,
        `${jobId}:${sha256}`,
        jobId,
        sha256,
      ),
    );
  }

  /** Runs `register` (a script answering 1 while a delete of the blob runs) until no delete runs; gives up after the lock's 30 s. */
  async #untilNoDelete(sha256: string, register: () => Promise<unknown>): Promise<void> {
    const deadline = Date.now() + GC_LOCK_MS + 1_000;
    while ((await register()) === 1) {
      if (Date.now() > deadline)
        throw new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', 'a blob delete did not finish in time', {
          details: { sha256 },
        });
      await sleep(GC_LOCK_POLL_MS);
    }
  }

  /**
   * Drops `referrer` and deletes the bytes when nothing else references them. Idempotent.
   * Resolves whether the bytes were deleted.
   */
  async release(sha256: string, referrer: string): Promise<boolean> {
    return this.#collect(sha256, referrer);
  }

  /** Deletes the bytes of a blob that no record references (a no-op, resolving false, when one does). */
  async collectIfUnreferenced(sha256: string): Promise<boolean> {
    return this.#collect(sha256, '');
  }

  /** Whether any record references the blob. */
  async isReferenced(sha256: string): Promise<boolean> {
    return (await this.#redis.exists(this.#refsKey(sha256))) === 1;
  }

  async #collect(sha256: string, referrer: string): Promise<boolean> {
    const token = randomUUID();
    const lockKey = this.#lockKey(sha256);
    const owned = await this.#redis.eval(
      RELEASE_SCRIPT,
      2,
      this.#refsKey(sha256),
      lockKey,
      referrer,
      token,
      GC_LOCK_MS,
    );
    if (owned !== token) return false;
    try {
      return await this.#blobs.delete(sha256);
    } finally {
      await this.#redis.eval(UNLOCK_SCRIPT, 1, lockKey, token);
    }
  }

  /** The inline texts job `jobId` references (none for a file job, or once released). */
  async textsOf(jobId: string): Promise<string[]> {
    const sha256 = await this.#redis.hget(redisKeys.jobTexts(this.#prefix), jobId);
    return sha256 ? [sha256] : [];
  }

  /** Job references due for a look (up to `count`), as `{jobId, sha256}`. */
  async dueJobReferences(now: number, count: number): Promise<Array<{ jobId: string; sha256: string }>> {
    const members = await this.#redis.zrangebyscore(
      redisKeys.jobBlobRefs(this.#prefix),
      '-inf',
      now,
      'LIMIT',
      0,
      count,
    );
    return members.flatMap((member) => {
      const colon = member.lastIndexOf(':');
      return colon > 0 ? [{ jobId: member.slice(0, colon), sha256: member.slice(colon + 1) }] : [];
    });
  }

  /** Looks at a job reference again at `checkAtMs` (the job still exists). */
  async postponeJob(jobId: string, sha256: string, checkAtMs: number): Promise<void> {
    await this.#redis.zadd(redisKeys.jobBlobRefs(this.#prefix), checkAtMs, `${jobId}:${sha256}`);
  }

  /** Drops job `jobId`'s reference to `sha256` (and its tracking), deleting the bytes when nothing else references them. */
  async releaseJob(jobId: string, sha256: string): Promise<boolean> {
    const deleted = await this.release(sha256, jobReferrer(jobId));
    await this.#redis
      .multi()
      .zrem(redisKeys.jobBlobRefs(this.#prefix), `${jobId}:${sha256}`)
      .hdel(redisKeys.jobTexts(this.#prefix), jobId)
      .exec();
    return deleted;
  }

  #refsKey(sha256: string): string {
    return redisKeys.blobRefs(this.#prefix, sha256);
  }

  #lockKey(sha256: string): string {
    return redisKeys.blobGcLock(this.#prefix, sha256);
  }
}

/** A job's member in its inline text's reference set. */
export function jobReferrer(jobId: string): string {
  return `job:${jobId}`;
}
