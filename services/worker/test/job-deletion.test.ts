import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { redisKeys, type GenerateJobResult } from '@gembatch/contracts';
import { deleteJob, getJobView } from '@gembatch/queue';
import { BlobReferences, JobBlobCleaner } from '@gembatch/storage';
import { closeAfterTest, ensureTestModel, makeLongText, openTestRedis, redisTest, tempDir } from '@gembatch/testing';
import { startWorker, TENANT } from './worker-harness.ts';

/** Every blob address in the store. */
async function blobSet(list: AsyncIterable<{ sha256: string }>): Promise<Set<string>> {
  const all = new Set<string>();
  for await (const entry of list) all.add(entry.sha256);
  return all;
}

describe('deleting a finished job on a real worker', () => {
  redisTest(
    'removes its records, chunk children, extracted document, chunk texts and result; keeps the uploaded file',
    async ({ redis }) => {
      const dir = await tempDir();
      try {
        const worker = await startWorker(redis, {
          GEMBATCH_MODEL: await ensureTestModel('tiny'),
          GEMBATCH_SEQUENCES: '4',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '512',
        });
        const connection = closeAfterTest(openTestRedis(redis.url));
        const cleaner = new JobBlobCleaner(worker.blobs, new BlobReferences(connection, redis.prefix, worker.blobs));

        // A text file about three times the context: extracted, then split into chunk children.
        const path = join(dir.path, 'long.txt');
        const text = makeLongText(900);
        await writeFile(path, text);
        const uploaded = createHash('sha256').update(text).digest('hex');
        const id = await worker.submitFile(path, 'summarize', { max_tokens: 8 });
        const view = await worker.settle(id, 120_000);
        expect(view.status).toBe('completed');
        const generated = (await worker.producer.queues.generate.getJob(id))?.returnvalue as GenerateJobResult;
        expect(generated.chunks).toBeGreaterThanOrEqual(2);
        const children = await Promise.all(
          Array.from({ length: generated.chunks }, (_, i) =>
            worker.producer.queues.generate.getJob(`${id}-chunk-${i}`),
          ),
        );
        expect(children.every((child) => child !== undefined)).toBe(true);
        const derived = [...(await blobSet(worker.blobs.list()))].filter((sha) => sha !== uploaded);
        // The extracted document, every chunk text and the result.
        expect(derived.length).toBeGreaterThanOrEqual(generated.chunks + 2);

        const deleted = await deleteJob(worker.producer, id, TENANT, cleaner);
        expect(deleted).toMatchObject({ id, cancelled: false });
        expect(deleted.blobs).toBe(derived.length);
        await expect(getJobView(worker.producer, id, TENANT)).rejects.toMatchObject({ code: 'GB_ERR_NOT_FOUND' });
        for (const queue of Object.values(worker.producer.queues)) expect(await queue.getJob(id)).toBeUndefined();
        for (let i = 0; i < generated.chunks; i += 1)
          expect(await worker.producer.queues.generate.getJob(`${id}-chunk-${i}`)).toBeUndefined();
        expect(await connection.zscore(redisKeys.tenantJobs(redis.prefix, TENANT), id)).toBeNull();
        // Only the uploaded file's bytes are left (the harness stored them without a file record).
        expect(await blobSet(worker.blobs.list())).toEqual(new Set([uploaded]));
        await expect(deleteJob(worker.producer, id, TENANT, cleaner)).rejects.toMatchObject({
          code: 'GB_ERR_NOT_FOUND',
        });
      } finally {
        await dir.cleanup();
      }
    },
  );

  redisTest(
    'deletes a chunked job while its children run: cancelled, waited for, and nothing of it left',
    async ({ redis }) => {
      const dir = await tempDir();
      try {
        const worker = await startWorker(redis, {
          GEMBATCH_MODEL: await ensureTestModel('tiny'),
          GEMBATCH_SEQUENCES: '2',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '512',
        });
        const connection = closeAfterTest(openTestRedis(redis.url));
        const cleaner = new JobBlobCleaner(worker.blobs, new BlobReferences(connection, redis.prefix, worker.blobs));
        const path = join(dir.path, 'longer.txt');
        const text = makeLongText(3_000);
        await writeFile(path, text);
        const uploaded = createHash('sha256').update(text).digest('hex');
        // Long generations, so the children are still running when the delete comes.
        const id = await worker.submitFile(path, 'summarize', { max_tokens: 200 });
        await vi.waitFor(
          async () => expect(await worker.producer.queues.generate.getJobState(`${id}-chunk-0`)).toBe('active'),
          { timeout: 60_000, interval: 25 },
        );

        const deleted = await deleteJob(worker.producer, id, TENANT, cleaner);
        expect(deleted.cancelled).toBe(true);
        await expect(getJobView(worker.producer, id, TENANT)).rejects.toMatchObject({ code: 'GB_ERR_NOT_FOUND' });
        expect(await worker.producer.queues.generate.getJob(`${id}-chunk-0`)).toBeUndefined();
        expect(await connection.exists(redisKeys.cancelled(redis.prefix, id))).toBe(0);
        expect(await blobSet(worker.blobs.list())).toEqual(new Set([uploaded]));
        // The node goes on serving.
        expect(
          (
            await worker.settle(
              await worker.submitText('Still serving after a delete.', 'summarize', { max_tokens: 4 }),
            )
          ).status,
        ).toBe('completed');
      } finally {
        await dir.cleanup();
      }
    },
  );
});
