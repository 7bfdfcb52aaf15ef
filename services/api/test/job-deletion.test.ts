import { createHash } from 'node:crypto';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { describe, expect, vi } from 'vitest';
import {
  encodeFailedReason,
  GembatchError,
  QUEUE_NAMES,
  redisKeys,
  type GenerateJobData,
  type JobResultDocument,
} from '@gembatch/contracts';
import { putJson } from '@gembatch/storage';
import { closeAfterTest, openTestRedis, redisTest, type RedisTestContext } from '@gembatch/testing';
import { startApi } from './api-harness.ts';

const WAIT = { timeout: 20_000, interval: 25 };
const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex');
const KEYS = 'key-acme-0123456789abcdef:acme,key-globex-0123456789abcdef:globex';
const acme = { authorization: 'Bearer key-acme-0123456789abcdef' };
const globex = { authorization: 'Bearer key-globex-0123456789abcdef' };

function generateWorker(redis: RedisTestContext, processor: (job: Job) => Promise<unknown>): Worker {
  const connection = closeAfterTest(openTestRedis(redis.url, { blocking: true }));
  const worker = new Worker(QUEUE_NAMES.generate, processor, { connection, prefix: redis.prefix });
  closeAfterTest({ close: () => worker.close(true) });
  return worker;
}

describe('DELETE /v1/jobs/:id', () => {
  redisTest(
    'deletes a completed text job: records, result, index entry, and the inline text once no other job has it',
    async ({ redis }) => {
      const { app, blobStore, producer, redis: connection } = await startApi(redis, { GEMBATCH_API_KEYS: KEYS });
      const text = 'Confidential: the settlement is 2 million.';
      const first = (
        await app.inject({ method: 'POST', url: '/v1/jobs', headers: acme, payload: { text, task: 'summarize' } })
      ).json();
      const second = (
        await app.inject({ method: 'POST', url: '/v1/jobs', headers: acme, payload: { text, task: 'summarize' } })
      ).json();
      generateWorker(redis, async (job) => {
        const data = job.data as GenerateJobData;
        const usage = { prompt_tokens: 1, generated_tokens: 1, media_tokens: 0 };
        const timings = {
          queue_wait_ms: 0,
          extract_ms: 0,
          time_to_first_token_ms: 1,
          inter_token_ms: 1,
          generate_ms: 1,
          total_ms: 1,
        };
        const document: JobResultDocument = {
          job_id: data.job_id,
          task: data.task,
          output: { text: 'summary' },
          usage,
          timings,
          finish_reason: 'stop',
          model: 'm',
          node: 'n',
          chunks: 1,
        };
        return {
          result_sha256: (await putJson(blobStore, document)).sha256,
          usage,
          timings,
          finish_reason: 'stop',
          node: 'n',
          model: 'm',
          chunks: 1,
        };
      });
      for (const job of [first, second])
        await vi.waitFor(
          async () =>
            expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: acme })).json().status).toBe(
              'completed',
            ),
          WAIT,
        );
      const resultOf = async (id: string) =>
        ((await producer.queues.generate.getJob(id))?.returnvalue as { result_sha256: string }).result_sha256;
      const firstResult = await resultOf(first.id);
      expect(await blobStore.has(firstResult)).toBe(true);

      // Another tenant cannot delete it.
      expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${first.id}`, headers: globex })).statusCode).toBe(
        404,
      );

      const deleted = await app.inject({ method: 'DELETE', url: `/v1/jobs/${first.id}`, headers: acme });
      expect(deleted.statusCode).toBe(200);
      expect(deleted.json()).toEqual({ id: first.id, object: 'job', deleted: true });
      expect((await app.inject({ method: 'GET', url: `/v1/jobs/${first.id}`, headers: acme })).statusCode).toBe(404);
      expect((await app.inject({ method: 'GET', url: `/v1/jobs/${first.id}/result`, headers: acme })).statusCode).toBe(
        404,
      );
      expect(await connection.zscore(redisKeys.tenantJobs(redis.prefix, 'acme'), first.id)).toBeNull();
      expect(await blobStore.has(firstResult)).toBe(false);
      // The other job still has the same text and its result.
      expect(await blobStore.has(sha256Of(text))).toBe(true);
      expect((await app.inject({ method: 'GET', url: `/v1/jobs/${second.id}/result`, headers: acme })).statusCode).toBe(
        200,
      );

      expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${second.id}`, headers: acme })).statusCode).toBe(
        200,
      );
      expect(await blobStore.has(sha256Of(text))).toBe(false);
      expect(await connection.exists(redisKeys.blobRefs(redis.prefix, sha256Of(text)))).toBe(0);
      expect(await connection.zcard(redisKeys.jobBlobRefs(redis.prefix))).toBe(0);
      // Only blobs of nothing are left: every result went with its job.
      const left: string[] = [];
      for await (const entry of blobStore.list()) left.push(entry.sha256);
      expect(left).toEqual([]);
    },
  );

  redisTest('cancels a running job first, waits for it to stop, then deletes it', async ({ redis }) => {
    const { app, blobStore, redis: connection } = await startApi(redis);
    let markStarted = () => {};
    const started = new Promise<void>((resolve) => {
      markStarted = resolve;
    });
    generateWorker(redis, async (job) => {
      markStarted();
      // What the real worker does on a cancel: notice it and stop with GB_ERR_CANCELLED.
      await vi.waitFor(
        async () => expect(await connection.exists(redisKeys.cancelled(redis.prefix, job.id as string))).toBe(1),
        WAIT,
      );
      throw new UnrecoverableError(encodeFailedReason(new GembatchError('GB_ERR_CANCELLED', 'the job was cancelled')));
    });
    const job = (
      await app.inject({ method: 'POST', url: '/v1/jobs', payload: { text: 'running text', task: 'summarize' } })
    ).json();
    await started;
    const deleted = await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
    expect(deleted.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).statusCode).toBe(404);
    expect(await connection.exists(redisKeys.cancelled(redis.prefix, job.id))).toBe(0);
    expect(await blobStore.has(sha256Of('running text'))).toBe(false);
  });

  redisTest('deletes a queued job that no worker has taken', async ({ redis }) => {
    const { app, producer, blobStore } = await startApi(redis);
    const job = (
      await app.inject({ method: 'POST', url: '/v1/jobs', payload: { text: 'queued text', task: 'summarize' } })
    ).json();
    expect(await blobStore.has(sha256Of('queued text'))).toBe(true);
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` })).statusCode).toBe(200);
    expect(await producer.queues.generate.getJob(job.id)).toBeUndefined();
    expect(await blobStore.has(sha256Of('queued text'))).toBe(false);

    // Cancelled while waiting (its records are gone, only the marker is left), then deleted: the text goes too.
    const cancelled = (
      await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { text: 'cancelled then deleted', task: 'summarize' },
      })
    ).json();
    expect((await app.inject({ method: 'POST', url: `/v1/jobs/${cancelled.id}/cancel` })).statusCode).toBe(200);
    expect(await blobStore.has(sha256Of('cancelled then deleted'))).toBe(true);
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${cancelled.id}` })).statusCode).toBe(200);
    expect(await blobStore.has(sha256Of('cancelled then deleted'))).toBe(false);
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${cancelled.id}` })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/jobs' })).json().data).toEqual([]);
  });
});

describe('per-tenant queued-jobs quota', () => {
  redisTest(
    'answers 429 with Retry-After past the limit, per tenant; finished or deleted jobs free their slot',
    async ({ redis }) => {
      const { app } = await startApi(redis, { GEMBATCH_API_KEYS: KEYS, GEMBATCH_TENANT_MAX_QUEUED_JOBS: '2' });
      const submit = (headers: Record<string, string>) =>
        app.inject({ method: 'POST', url: '/v1/jobs', headers, payload: { text: 'a job', task: 'summarize' } });
      const one = (await submit(acme)).json();
      expect((await submit(acme)).statusCode).toBe(202);
      const refused = await submit(acme);
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['retry-after']).toBe('30');
      expect(refused.json().error).toMatchObject({
        code: 'GB_ERR_QUOTA_EXCEEDED',
        message: expect.stringContaining('GEMBATCH_TENANT_MAX_QUEUED_JOBS'),
      });
      // Another tenant has its own quota.
      expect((await submit(globex)).statusCode).toBe(202);

      // A cancelled job is finished: the next submission prunes it and gets its slot.
      expect((await app.inject({ method: 'POST', url: `/v1/jobs/${one.id}/cancel`, headers: acme })).statusCode).toBe(
        200,
      );
      const three = await submit(acme);
      expect(three.statusCode).toBe(202);
      expect((await submit(acme)).statusCode).toBe(429);
      expect(
        (await app.inject({ method: 'DELETE', url: `/v1/jobs/${three.json().id}`, headers: acme })).statusCode,
      ).toBe(200);
      expect((await submit(acme)).statusCode).toBe(202);
    },
  );
});
