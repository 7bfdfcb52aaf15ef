import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, onTestFinished } from 'vitest';
import { redisKeys } from '@gembatch/contracts';
import { BlobReferences, FileStore, FileSystemBlobStore } from '@gembatch/storage';
import { closeAfterTest, openTestRedis, redisTest, tempDir, type RedisTestContext } from '@gembatch/testing';

const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex');

async function setup(redis: RedisTestContext) {
  const dir = await tempDir('gembatch-refs-');
  onTestFinished(() => dir.cleanup());
  const connection = closeAfterTest(openTestRedis(redis.url));
  const blobs = new FileSystemBlobStore({ root: join(dir.path, 'blobs') });
  return { connection, blobs, refs: new BlobReferences(connection, redis.prefix, blobs) };
}

describe('BlobReferences', () => {
  redisTest(
    'keeps the bytes while any referrer is left, deletes them with the last, and is idempotent',
    async ({ redis }) => {
      const { blobs, refs } = await setup(redis);
      const { sha256 } = await blobs.put(Buffer.from('shared bytes'), {
        beforeCommit: (sha) => refs.acquire(sha, 'file:a'),
      });
      await refs.acquire(sha256, 'job:b');
      expect(await refs.release(sha256, 'file:a')).toBe(false);
      expect(await refs.release(sha256, 'file:a')).toBe(false);
      expect(await blobs.has(sha256)).toBe(true);
      expect(await refs.collectIfUnreferenced(sha256)).toBe(false);
      expect(await refs.release(sha256, 'job:b')).toBe(true);
      expect(await blobs.has(sha256)).toBe(false);
      expect(await refs.isReferenced(sha256)).toBe(false);
      expect(await refs.release(sha256, 'job:b')).toBe(false);
    },
  );

  redisTest(
    'a writer of the same content waits while a delete holds the lock, so its blob survives',
    async ({ redis }) => {
      const { connection, blobs, refs } = await setup(redis);
      const sha256 = sha256Of('contended');
      // A deleter that took the lock and has not unlinked yet.
      await connection.set(redisKeys.blobGcLock(redis.prefix, sha256), 'another-deleter', 'PX', 30_000);
      let committed = false;
      const writing = blobs
        .put(Buffer.from('contended'), { beforeCommit: (sha) => refs.acquire(sha, 'file:new') })
        .then((result) => {
          committed = true;
          return result;
        });
      await delay(200);
      expect(committed).toBe(false);
      // The deleter finishes (unlinks whatever was there) and unlocks: the writer's bytes appear after.
      await blobs.delete(sha256);
      await connection.del(redisKeys.blobGcLock(redis.prefix, sha256));
      expect((await writing).sha256).toBe(sha256);
      expect(await blobs.has(sha256)).toBe(true);
      expect(await connection.smembers(redisKeys.blobRefs(redis.prefix, sha256))).toEqual(['file:new']);
    },
  );

  redisTest(
    "a job's text is referenced and tracked in one call, which also waits for a delete of the same content",
    async ({ redis }) => {
      const { connection, blobs, refs } = await setup(redis);
      const sha256 = sha256Of('a document');
      await connection.set(redisKeys.blobGcLock(redis.prefix, sha256), 'another-deleter', 'PX', 30_000);
      let committed = false;
      const writing = blobs
        .put(Buffer.from('a document'), { beforeCommit: (sha) => refs.acquireForJob(sha, 'job_1', 5_000) })
        .then(() => (committed = true));
      await delay(200);
      expect(committed).toBe(false);
      await connection.del(redisKeys.blobGcLock(redis.prefix, sha256));
      await writing;
      expect(await blobs.has(sha256)).toBe(true);
      expect(await connection.smembers(redisKeys.blobRefs(redis.prefix, sha256))).toEqual(['job:job_1']);
      expect(await refs.textsOf('job_1')).toEqual([sha256]);
      // Due at the check time, not before: the sweeper looks at the job then and releases it once the job is gone.
      expect(await refs.dueJobReferences(4_999, 10)).toEqual([]);
      expect(await refs.dueJobReferences(5_000, 10)).toEqual([{ jobId: 'job_1', sha256 }]);
      expect(await refs.releaseJob('job_1', sha256)).toBe(true);
      expect(await blobs.has(sha256)).toBe(false);
      expect(await refs.textsOf('job_1')).toEqual([]);
    },
  );

  redisTest(
    'many concurrent creates and deletes of the same content never leave a record without bytes',
    async ({ redis }) => {
      const { connection, blobs } = await setup(redis);
      const files = new FileStore({ redis: connection, prefix: redis.prefix, blobs });
      let live = await Promise.all(
        Array.from({ length: 8 }, () =>
          files.create(Buffer.from('hot content'), { tenant: 'default', filename: 'f.txt' }),
        ),
      );
      for (let round = 0; round < 10; round += 1) {
        const [added] = await Promise.all([
          files.create(Buffer.from('hot content'), { tenant: 'default', filename: 'f.txt' }),
          ...live.slice(0, 4).map((r) => files.delete('default', r.id)),
        ]);
        live = [...live.slice(4), added];
        expect(await blobs.has(sha256Of('hot content'))).toBe(true);
      }
      for (const record of live) await files.delete('default', record.id);
      expect(await blobs.has(sha256Of('hot content'))).toBe(false);
      expect(await files.storedBytes('default')).toBe(0);
    },
  );
});
