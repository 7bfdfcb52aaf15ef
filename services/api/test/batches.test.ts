import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { BatchFeeder, type BatchObject } from '@gembatch/batches';
import { GembatchError, type GenerateJobData, type GenerateJobResult } from '@gembatch/contracts';
import { defineWorker } from '@gembatch/queue';
import { FileStore, putJson } from '@gembatch/storage';
import { closeAfterTest, openTestRedis, redisTest, tempDir, type RedisTestContext } from '@gembatch/testing';
import { loadApiEnv } from '../src/index.ts';
import { batchRequestCheck, requestLimitsFromEnv } from '../src/request-limits.ts';
import { startApi, upload } from './api-harness.ts';

/** The API with a batch feeder on the same Redis (no worker: these tests stop before anything runs). */
async function startWithFeeder(redis: RedisTestContext, env: Record<string, string> = {}) {
  const harness = await startApi(redis, env);
  // As server.ts does: the API's per-request caps apply to every batch line.
  const checkRequest = batchRequestCheck(requestLimitsFromEnv(loadApiEnv({ REDIS_URL: redis.url, ...env })));
  const feeder = new BatchFeeder({
    redis: harness.redis,
    prefix: redis.prefix,
    producer: harness.producer,
    blobStore: harness.blobStore,
    files: new FileStore({ redis: harness.redis, prefix: redis.prefix, blobs: harness.blobStore }),
    logger: harness.app.log as never,
    checkRequest,
  });
  closeAfterTest(feeder);
  await feeder.start();
  const post = async (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    harness.app.inject({ method: 'POST', url, payload: payload as Record<string, unknown>, headers });
  const get = async <T>(url: string): Promise<T> => (await harness.app.inject({ method: 'GET', url })).json<T>();
  const waitFor = (id: string, status: string) =>
    vi.waitFor(
      async () => {
        const batch = await get<BatchObject>(`/v1/batches/${id}`);
        if (batch.status !== status) throw new Error(`batch is ${batch.status}`);
        return batch;
      },
      { timeout: 20_000, interval: 50 },
    );
  return { ...harness, feeder, post, get, waitFor };
}

const line = (customId: string, body: Record<string, unknown> = { text: 'hello', task: 'summarize' }) =>
  JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/jobs', body });

describe('/v1/batches', () => {
  redisTest(
    'an Idempotency-Key returns the same batch (and the same job on POST /v1/jobs); another key makes a new one',
    async ({ redis }) => {
      const { app, post } = await startWithFeeder(redis);
      const input = await upload(app, `${line('a')}\n`, 'input.jsonl');
      const body = { input_file_id: input.id, endpoint: '/v1/jobs', completion_window: '24h' };
      const first = (await post('/v1/batches', body, { 'idempotency-key': 'nightly-2026-11-30' })).json<BatchObject>();
      const again = (await post('/v1/batches', body, { 'idempotency-key': 'nightly-2026-11-30' })).json<BatchObject>();
      const other = (await post('/v1/batches', body, { 'idempotency-key': 'nightly-2026-12-01' })).json<BatchObject>();
      expect(again.id).toBe(first.id);
      expect(other.id).not.toBe(first.id);
      const listed = await app.inject({ method: 'GET', url: '/v1/batches?limit=1' });
      expect(listed.json()).toMatchObject({
        object: 'list',
        data: [{ id: other.id }],
        first_id: other.id,
        last_id: other.id,
        has_more: true,
      });
      expect((await app.inject({ method: 'GET', url: `/v1/batches?after=${other.id}` })).json()).toMatchObject({
        data: [{ id: first.id }],
        has_more: false,
      });

      const job = (await post('/v1/jobs', { text: 'x', task: 'summarize' }, { 'idempotency-key': 'job-1' })).json<{
        id: string;
      }>();
      const jobAgain = await post('/v1/jobs', { text: 'x', task: 'summarize' }, { 'idempotency-key': 'job-1' });
      expect(jobAgain.statusCode).toBe(202);
      expect(jobAgain.json<{ id: string }>().id).toBe(job.id);
      expect(
        (await post('/v1/jobs', { text: 'x', task: 'summarize' }, { 'idempotency-key': 'job-2' })).json<{
          id: string;
        }>().id,
      ).not.toBe(job.id);
    },
  );

  redisTest(
    'a file with broken lines fails validation with each line number; a bad body is a request error, not a failed batch',
    async ({ redis }) => {
      const { app, post, waitFor } = await startWithFeeder(redis);
      const broken = [
        line('a'),
        '{not json',
        JSON.stringify({ custom_id: 'b', method: 'POST', url: '/v1/chat/completions', body: {} }),
        line('a'),
        JSON.stringify({ method: 'POST', url: '/v1/jobs', body: {} }),
      ].join('\n');
      const bad = (
        await post('/v1/batches', {
          input_file_id: (await upload(app, broken, 'broken.jsonl')).id,
          endpoint: '/v1/jobs',
        })
      ).json<BatchObject>();
      const failed = await waitFor(bad.id, 'failed');
      expect(failed.errors?.data.map((e) => e.line)).toEqual([2, 3, 4, 5]);
      expect(failed.errors?.data[2]?.message).toMatch(/custom_id "a" is used by an earlier line/);
      expect(Number.isInteger(failed.failed_at)).toBe(true);

      const mixed = [line('ok'), line('bad-task', { text: 'x', task: 'nope' }), line('ok-2')].join('\n');
      const batch = (
        await post('/v1/batches', { input_file_id: (await upload(app, mixed, 'mixed.jsonl')).id, endpoint: '/v1/jobs' })
      ).json<BatchObject>();
      const running = await waitFor(batch.id, 'in_progress');
      expect(running.request_counts).toEqual({ total: 3, completed: 0, failed: 1 });
      const errors = await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}/errors` });
      expect(errors.headers['content-type']).toMatch(/^application\/jsonl/);
      expect(JSON.parse(errors.body)).toMatchObject({
        custom_id: 'bad-task',
        response: { status_code: 400 },
        error: { code: 'GB_ERR_BAD_REQUEST', message: expect.stringMatching(/^line 2: body.task/) },
      });
    },
  );

  redisTest(
    'batch lines meet the same caps as POST /v1/jobs (metadata, schemas, inline text), and hostile base64 is refused in linear time',
    async ({ redis }) => {
      const { app, post, waitFor } = await startWithFeeder(redis, {
        GEMBATCH_MAX_METADATA_KEYS: '2',
        GEMBATCH_MAX_INLINE_TEXT_BYTES: '1000',
      });
      const chat = (data: string) =>
        JSON.stringify({
          custom_id: 'audio',
          method: 'POST',
          url: '/v1/chat/completions',
          body: {
            messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data, format: 'wav' } }] }],
          },
        });
      const lines = [
        line('ok'),
        line('metadata', { text: 'x', task: 'summarize', metadata: { a: '1', b: '2', c: '3' } }),
        line('text', { text: 'x'.repeat(1001), task: 'summarize' }),
        line('lookahead', {
          text: 'x',
          task: 'prompt',
          prompt: 'p',
          json_schema: { type: 'string', pattern: '^(?=a)a$' },
        }),
      ];
      const jobs = (
        await post('/v1/batches', {
          input_file_id: (await upload(app, lines.join('\n'), 'caps.jsonl')).id,
          endpoint: '/v1/jobs',
        })
      ).json<BatchObject>();
      expect((await waitFor(jobs.id, 'in_progress')).request_counts).toEqual({ total: 4, completed: 0, failed: 3 });
      const errors = (await app.inject({ method: 'GET', url: `/v1/batches/${jobs.id}/errors` })).body
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { custom_id: string; error: { code: string; message: string } });
      expect(errors.map((e) => [e.custom_id, e.error.code])).toEqual([
        ['metadata', 'GB_ERR_BAD_REQUEST'],
        ['text', 'GB_ERR_BAD_REQUEST'],
        ['lookahead', 'GB_ERR_SCHEMA_UNSUPPORTED'],
      ]);
      expect(errors[0]?.error.message).toMatch(/GEMBATCH_MAX_METADATA_KEYS/);
      expect(errors[1]?.error.message).toMatch(/GEMBATCH_MAX_INLINE_TEXT_BYTES/);

      // 200,000 newlines then a bad character: quadratic backtracking took seconds at 20,000.
      const started = Date.now();
      const hostile = (
        await post('/v1/batches', {
          input_file_id: (await upload(app, chat(`${'\n'.repeat(200_000)}!`), 'hostile.jsonl')).id,
          endpoint: '/v1/chat/completions',
        })
      ).json<BatchObject>();
      // Its only request failed, so the batch ends at once.
      expect((await waitFor(hostile.id, 'completed')).request_counts).toEqual({ total: 1, completed: 0, failed: 1 });
      expect(Date.now() - started).toBeLessThan(15_000);
    },
  );

  redisTest(
    'native shortcuts: file_ids, and a folder under the allowed root only (symlinks out of it are skipped)',
    async ({ redis }) => {
      const root = await tempDir();
      const outside = await tempDir();
      try {
        await mkdir(join(root.path, 'cases', 'sub'), { recursive: true });
        await writeFile(join(root.path, 'cases', 'a.txt'), 'first');
        await writeFile(join(root.path, 'cases', 'sub', 'b.txt'), 'second');
        await writeFile(join(outside.path, 'secret.txt'), 'not yours');
        await symlink(join(outside.path, 'secret.txt'), join(root.path, 'cases', 'escape.txt'));
        await symlink(outside.path, join(root.path, 'outside-link'));
        const { app, post, waitFor, get } = await startWithFeeder(redis, { GEMBATCH_BATCH_FOLDER_ROOT: root.path });

        const folder = await post('/v1/batches', { folder: 'cases', task: 'summarize', options: { length: 'short' } });
        expect(folder.statusCode).toBe(200);
        const fromFolder = await waitFor(folder.json<BatchObject>().id, 'in_progress');
        expect(fromFolder.request_counts.total).toBe(2);
        const input = await app.inject({ method: 'GET', url: `/v1/files/${fromFolder.input_file_id}/content` });
        expect(
          input.body
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l).custom_id),
        ).toEqual(['a.txt', 'sub/b.txt']);
        for (const folderPath of ['..', '../..', 'outside-link', outside.path]) {
          const refused = await post('/v1/batches', { folder: folderPath, task: 'summarize' });
          expect({ folderPath, status: refused.statusCode }).toEqual({ folderPath, status: 400 });
        }

        const a = await upload(app, 'one');
        const b = await upload(app, 'two');
        const fromIds = (await post('/v1/batches', { file_ids: [a.id, b.id], task: 'summarize' })).json<BatchObject>();
        expect(fromIds.endpoint).toBe('/v1/jobs');
        expect((await waitFor(fromIds.id, 'in_progress')).request_counts.total).toBe(2);
        const cancelled = await post(`/v1/batches/${fromIds.id}/cancel`, {});
        expect(['cancelling', 'cancelled']).toContain(cancelled.json<BatchObject>().status);
        const done = await waitFor(fromIds.id, 'cancelled');
        expect(done.request_counts.total).toBe(2);
        // No worker runs here: nothing completed, and what was queued was withdrawn.
        expect(done.request_counts.completed).toBe(0);
        expect(done.output_file_id).toBeNull();
        expect((await get<BatchObject>(`/v1/batches/${fromIds.id}`)).status).toBe('cancelled');
      } finally {
        await root.cleanup();
        await outside.cleanup();
      }
    },
  );

  redisTest(
    'a batch whose completion window passes expires: every unfinished request is in the error file as GB_ERR_BATCH_EXPIRED',
    async ({ redis }) => {
      const { app, post, waitFor } = await startWithFeeder(redis);
      const input = await upload(
        app,
        [line('a'), line('b', { text: 'other', task: 'summarize' }), line('c', { text: 'x', task: 'nope' })].join('\n'),
        'input.jsonl',
      );
      const batch = (
        await post('/v1/batches', { input_file_id: input.id, endpoint: '/v1/jobs', completion_window: '2s' })
      ).json<BatchObject>();
      expect(batch.expires_at).toBe(batch.created_at + 2);
      // No worker: nothing can finish before the window ends.
      const expired = await waitFor(batch.id, 'expired');
      expect(expired.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
      expect(expired.output_file_id).toBeNull();
      expect(Number.isInteger(expired.expired_at)).toBe(true);
      const errors = (await app.inject({ method: 'GET', url: `/v1/files/${expired.error_file_id}/content` })).body
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      expect(errors.map((e) => [e.custom_id, e.error.code])).toEqual([
        ['a', 'GB_ERR_BATCH_EXPIRED'],
        ['b', 'GB_ERR_BATCH_EXPIRED'],
        ['c', 'GB_ERR_BAD_REQUEST'],
      ]);
    },
  );

  redisTest(
    'a retryable failure is retried with backoff; a request that uses up its attempts lands in the error file with its code',
    async ({ redis }) => {
      const { app, post, blobStore } = await startWithFeeder(redis, { GEMBATCH_JOB_ATTEMPTS: '2' });
      const attempts = new Map<string, number>();
      // A real BullMQ worker on the generate queue whose model is a rule: "flaky" fails once, "broken" always.
      const worker = defineWorker<GenerateJobData, GenerateJobResult>({
        queue: 'generate',
        prefix: redis.prefix,
        connection: closeAfterTest(openTestRedis(redis.url, { blocking: true })),
        concurrency: 2,
        logger: app.log as never,
        parse: (data) => data as GenerateJobData,
        processor: async (data, ctx) => {
          const text = (await (await blobStore.get(data.input.sha256)).toArray()).join('');
          attempts.set(text, ctx.attempt);
          if (text === 'broken' || (text === 'flaky' && ctx.attempt === 1))
            throw new GembatchError('GB_ERR_INFERENCE', 'the engine failed');
          const usage = { prompt_tokens: 3, generated_tokens: 2, media_tokens: 0 };
          const timings = {
            queue_wait_ms: 0,
            extract_ms: 0,
            time_to_first_token_ms: 1,
            inter_token_ms: 1,
            generate_ms: 2,
            total_ms: 2,
          };
          const document = {
            job_id: data.job_id,
            task: data.task,
            output: { text: `ok ${text}` },
            usage,
            timings,
            finish_reason: 'stop',
            model: 'rule',
            node: 'test',
            chunks: 1,
          };
          const { sha256 } = await putJson(blobStore, document);
          return {
            result_sha256: sha256,
            usage,
            timings,
            finish_reason: 'stop',
            node: 'test',
            model: 'rule',
            chunks: 1,
          };
        },
      });
      closeAfterTest({ close: () => worker.close(1_000) });
      const input = await upload(
        app,
        [
          line('steady', { text: 'steady', task: 'summarize' }),
          line('flaky', { text: 'flaky', task: 'summarize' }),
          line('broken', { text: 'broken', task: 'summarize' }),
        ].join('\n'),
        'input.jsonl',
      );
      const batch = (await post('/v1/batches', { input_file_id: input.id, endpoint: '/v1/jobs' })).json<BatchObject>();
      const done = await vi.waitFor(
        async () => {
          const current = (await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}` })).json<BatchObject>();
          if (current.status !== 'completed') throw new Error(current.status);
          return current;
        },
        { timeout: 30_000, interval: 100 },
      );
      expect(done.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
      expect(Object.fromEntries(attempts)).toEqual({ steady: 1, flaky: 2, broken: 2 });
      const output = (await app.inject({ method: 'GET', url: `/v1/files/${done.output_file_id}/content` })).body;
      expect(
        output
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l).custom_id),
      ).toEqual(['steady', 'flaky']);
      const errors = (await app.inject({ method: 'GET', url: `/v1/files/${done.error_file_id}/content` })).body
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      expect(errors).toMatchObject([
        { custom_id: 'broken', response: { status_code: 500 }, error: { code: 'GB_ERR_INFERENCE' } },
      ]);
    },
  );

  redisTest(
    'folder batches are refused when no root is configured; OpenAPI documents every batch route',
    async ({ redis }) => {
      const { app, post } = await startWithFeeder(redis);
      const refused = await post('/v1/batches', { folder: 'anything', task: 'summarize' });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.message).toMatch(/GEMBATCH_BATCH_FOLDER_ROOT/);
      const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, unknown> }>();
      for (const path of [
        '/v1/batches',
        '/v1/batches/{id}',
        '/v1/batches/{id}/cancel',
        '/v1/batches/{id}/output',
        '/v1/batches/{id}/errors',
      ])
        expect(Object.keys(spec.paths)).toContain(path);
    },
  );
});
