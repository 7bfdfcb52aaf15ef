import { text } from 'node:stream/consumers';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { describe, expect, vi } from 'vitest';
import {
  encodeFailedReason,
  GembatchError,
  QUEUE_NAMES,
  redisKeys,
  type ExtractJobData,
  type GenerateJobData,
  type GenerateJobResult,
  type JobResultDocument,
  type QueueName,
} from '@gembatch/contracts';
import { putJson, type BlobStore } from '@gembatch/storage';
import { closeAfterTest, openTestRedis, redisTest, type RedisTestContext } from '@gembatch/testing';
import { startApi, upload } from './api-harness.ts';

const WAIT = { timeout: 15_000, interval: 25 };

/** A real BullMQ worker with a test-only processor: these tests check the API's view, not the engine. */
function workerFor(redis: RedisTestContext, queue: QueueName, processor: (job: Job) => Promise<unknown>): Worker {
  const connection = closeAfterTest(openTestRedis(redis.url, { blocking: true }));
  const worker = new Worker(queue, processor, { connection, prefix: redis.prefix });
  closeAfterTest({ close: () => worker.close(true) });
  return worker;
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** What the real generate processor does at the end: store the result document, return its address. */
async function finishGenerate(blobStore: BlobStore, data: GenerateJobData): Promise<GenerateJobResult> {
  const usage = { prompt_tokens: 12, generated_tokens: 5, media_tokens: 0 };
  const timings = {
    queue_wait_ms: 1,
    extract_ms: 0,
    time_to_first_token_ms: 2,
    inter_token_ms: 3,
    generate_ms: 14,
    total_ms: 20,
  };
  const document: JobResultDocument = {
    job_id: data.job_id,
    task: data.task,
    output: { text: 'a short summary' },
    usage,
    timings,
    finish_reason: 'stop',
    model: 'test-model',
    node: 'test-node',
    chunks: 1,
  };
  const { sha256 } = await putJson(blobStore, document);
  return {
    result_sha256: sha256,
    usage,
    timings,
    finish_reason: 'stop',
    node: 'test-node',
    model: 'test-model',
    chunks: 1,
  };
}

describe('jobs API', () => {
  redisTest('runs a text job: 202, queued, running, completed, then its result', async ({ redis }) => {
    const { app, blobStore, producer } = await startApi(redis);
    const submitted = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: {
        text: 'The quick brown fox.',
        task: 'summarize',
        options: { length: 'short' },
        priority: 3,
        metadata: { ref: 'x-1' },
      },
    });
    expect(submitted.statusCode).toBe(202);
    const job = submitted.json();
    expect(job).toMatchObject({
      id: expect.stringMatching(/^job_[0-9a-f]{32}$/),
      object: 'job',
      task: 'summarize',
      status: 'queued',
      progress: 0,
      error: null,
      metadata: { ref: 'x-1' },
    });
    expect(submitted.headers.location).toBe(`/v1/jobs/${job.id}`);

    const queued = await producer.queues.generate.getJob(job.id);
    const data = queued?.data as GenerateJobData;
    expect(data).toMatchObject({
      job_id: job.id,
      tenant: 'default',
      task: 'summarize',
      options: { length: 'short' },
      max_tokens: 256,
      input: { type: 'text' },
    });
    expect(await text(await blobStore.get(data.input.sha256))).toBe('The quick brown fox.');
    expect(queued?.opts).toMatchObject({ priority: 3, attempts: 3 });
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` })).statusCode).toBe(409);

    const release = gate();
    workerFor(redis, QUEUE_NAMES.generate, async (bullJob) => {
      await bullJob.updateProgress(60);
      await release.wait;
      return finishGenerate(blobStore, bullJob.data as GenerateJobData);
    });
    await vi.waitFor(
      async () =>
        expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json()).toMatchObject({
          status: 'running',
          progress: 60,
        }),
      WAIT,
    );
    release.open();
    await vi.waitFor(
      async () =>
        expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json().status).toBe('completed'),
      WAIT,
    );

    const view = (await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json();
    expect(view).toMatchObject({
      progress: 100,
      usage: { prompt_tokens: 12, generated_tokens: 5 },
      timings: { total_ms: 20 },
      finish_reason: 'stop',
      error: null,
    });
    expect(view.started_at).not.toBeNull();
    expect(view.finished_at).not.toBeNull();
    const result = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` });
    expect(result.statusCode).toBe(200);
    expect(result.headers['content-type']).toContain('application/json');
    expect(result.json()).toMatchObject({
      job_id: job.id,
      task: 'summarize',
      output: { text: 'a short summary' },
      model: 'test-model',
    });
    expect((await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` })).statusCode).toBe(409);
  });

  redisTest('runs a file job through extract and generate under one id', async ({ redis }) => {
    const { app, blobStore, producer } = await startApi(redis);
    const file = await upload(app, 'Quarterly report: revenue up.', 'report.txt');
    const job = (
      await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { file_id: file.id, task: 'prompt', prompt: 'List the numbers.', password: 'hunter2-secret' },
      })
    ).json();
    expect(job).toMatchObject({ status: 'queued', task: 'prompt', input: { file_id: file.id } });
    const extractData = (await producer.queues.extract.getJob(job.id))?.data as ExtractJobData;
    expect(extractData).toMatchObject({
      file: { id: file.id, sha256: file.sha256, bytes: file.bytes, filename: 'report.txt' },
      options: { instruction: 'List the numbers.' },
      max_tokens: 512,
      password: 'hunter2-secret',
    });

    const extracting = gate();
    workerFor(redis, QUEUE_NAMES.extract, async (bullJob) => {
      await extracting.wait;
      const data = bullJob.data as ExtractJobData;
      const next: GenerateJobData = {
        job_id: data.job_id,
        tenant: data.tenant,
        task: data.task,
        options: data.options,
        max_tokens: data.max_tokens,
        submitted_at: data.submitted_at,
        input: { type: 'document', sha256: data.file.sha256, file_id: data.file.id, media_type: 'text/plain' },
      };
      await producer.queues.generate.add(data.task, next, { jobId: data.job_id });
      return { document_sha256: data.file.sha256 };
    });
    await vi.waitFor(
      async () =>
        expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json().status).toBe('extracting'),
      WAIT,
    );
    extracting.open();
    await vi.waitFor(
      async () =>
        expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json()).toMatchObject({
          status: 'queued',
          input: { file_id: file.id, media_type: 'text/plain' },
        }),
      WAIT,
    );
    workerFor(redis, QUEUE_NAMES.generate, async (bullJob) =>
      finishGenerate(blobStore, bullJob.data as GenerateJobData),
    );
    await vi.waitFor(
      async () =>
        expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json().status).toBe('completed'),
      WAIT,
    );
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` })).json().output).toEqual({
      text: 'a short summary',
    });
  });

  redisTest('a zero-byte upload is accepted and its job fails with a typed code', async ({ redis }) => {
    const { app, blobStore } = await startApi(redis);
    const file = await upload(app, Buffer.alloc(0), 'empty.pdf');
    const job = (
      await app.inject({ method: 'POST', url: '/v1/jobs', payload: { file_id: file.id, task: 'summarize' } })
    ).json();
    // What the real extract step does with zero bytes (packages/extract: GB_ERR_EMPTY_INPUT, not retryable).
    workerFor(redis, QUEUE_NAMES.extract, async (bullJob) => {
      const data = bullJob.data as ExtractJobData;
      if ((await blobStore.bytes(data.file.sha256)) === 0)
        throw new UnrecoverableError(
          encodeFailedReason(new GembatchError('GB_ERR_EMPTY_INPUT', 'the file is empty (zero bytes)')),
        );
      return {};
    });
    await vi.waitFor(
      async () => expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json().status).toBe('failed'),
      WAIT,
    );
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json()).toMatchObject({
      error: { code: 'GB_ERR_EMPTY_INPUT', message: 'the file is empty (zero bytes)' },
      finished_at: expect.any(String),
    });
    const result = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` });
    expect(result.statusCode).toBe(409);
    expect(result.json().error).toMatchObject({
      code: 'GB_ERR_CONFLICT',
      message: expect.stringContaining('GB_ERR_EMPTY_INPUT'),
    });
  });

  redisTest('validates at submission and names the field', async ({ redis }) => {
    const { app } = await startApi(redis);
    const cases: Array<[Record<string, unknown>, number, string, RegExp]> = [
      [{ task: 'summarize' }, 400, 'GB_ERR_BAD_REQUEST', /^file_id: give exactly one of file_id or text/],
      [
        { task: 'summarize', text: 'a', file_id: 'file_00000000000000000000000000000000' },
        400,
        'GB_ERR_BAD_REQUEST',
        /^file_id: /,
      ],
      [
        { task: 'summarize', file_id: 'file_00000000000000000000000000000000' },
        400,
        'GB_ERR_FILE_NOT_FOUND',
        /^file_id: no file/,
      ],
      [{ task: 'summarize', file_id: 'not-an-id' }, 400, 'GB_ERR_BAD_REQUEST', /^file_id: /],
      [{ task: 'translate', text: 'a' }, 400, 'GB_ERR_BAD_REQUEST', /^task: /],
      [{ task: 'summarize', text: 'a', options: { length: 'huge' } }, 400, 'GB_ERR_BAD_REQUEST', /^options\.length: /],
      [{ task: 'summarize', text: 'a', options: { colour: 'red' } }, 400, 'GB_ERR_BAD_REQUEST', /^options: .*colour/],
      [
        { task: 'classify', text: 'a', options: { labels: ['only-one'] } },
        400,
        'GB_ERR_BAD_REQUEST',
        /^options\.labels: /,
      ],
      [{ task: 'extract', text: 'a' }, 400, 'GB_ERR_BAD_REQUEST', /^options\.schema: /],
      [{ task: 'prompt', text: 'a' }, 400, 'GB_ERR_BAD_REQUEST', /^prompt: /],
      [{ task: 'transcribe', text: 'a' }, 400, 'GB_ERR_BAD_REQUEST', /^task: the transcribe task takes audio/],
      [{ task: 'summarize', text: 'a', max_tokens: 0 }, 400, 'GB_ERR_BAD_REQUEST', /^max_tokens: /],
      [{ task: 'summarize', text: 'a', priority: 5000 }, 400, 'GB_ERR_BAD_REQUEST', /^priority: /],
      [{ task: 'summarize', text: 'a', surprise: true }, 400, 'GB_ERR_BAD_REQUEST', /surprise/],
      [{ task: 'summarize', text: '' }, 400, 'GB_ERR_BAD_REQUEST', /^text: /],
    ];
    for (const [payload, status, code, message] of cases) {
      const response = await app.inject({ method: 'POST', url: '/v1/jobs', payload });
      expect({ payload, status: response.statusCode, code: response.json().error?.code }).toEqual({
        payload,
        status,
        code,
      });
      expect(response.json().error.message).toMatch(message);
    }
    const notJson = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: '{"task":',
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error).toEqual({ code: 'GB_ERR_BAD_REQUEST', message: 'body: not valid JSON' });
    const wrongType = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: 'task=summarize',
      headers: { 'content-type': 'text/plain' },
    });
    expect(wrongType.statusCode).toBe(415);
    expect(wrongType.json().error.code).toBe('GB_ERR_UNSUPPORTED_MEDIA');
  });

  redisTest('accepts every built-in task with valid options', async ({ redis }) => {
    const { app } = await startApi(redis);
    const audio = await upload(app, 'RIFF', 'a.wav');
    const payloads = [
      { task: 'summarize', text: 'x', options: { length: 'long', audience: 'a judge' } },
      { task: 'prompt', text: 'x', prompt: 'Translate to French.' },
      {
        task: 'extract',
        text: 'x',
        options: { schema: { type: 'object', properties: { total: { type: 'number' } } } },
      },
      { task: 'classify', text: 'x', options: { labels: ['invoice', 'letter'] } },
      { task: 'redact', text: 'x', options: { types: ['email', 'name'] } },
      { task: 'transcribe', file_id: audio.id, options: { language: 'en' } },
      { task: 'describe', file_id: audio.id, options: { focus: 'signatures' } },
    ];
    for (const payload of payloads) {
      const response = await app.inject({ method: 'POST', url: '/v1/jobs', payload });
      expect({ task: payload.task, status: response.statusCode }).toEqual({ task: payload.task, status: 202 });
    }
  });

  redisTest('answers 404 for unknown job ids on every job route', async ({ redis }) => {
    const { app } = await startApi(redis);
    const unknown = 'job_00000000000000000000000000000000';
    for (const [method, url] of [
      ['GET', `/v1/jobs/${unknown}`],
      ['GET', `/v1/jobs/${unknown}/result`],
      ['POST', `/v1/jobs/${unknown}/cancel`],
      ['GET', '/v1/jobs/garbage'],
    ] as const) {
      const response = await app.inject({ method, url });
      expect({ url, status: response.statusCode, code: response.json().error.code }).toEqual({
        url,
        status: 404,
        code: 'GB_ERR_NOT_FOUND',
      });
    }
  });

  redisTest('cancels a waiting job: gone from its queue, reads cancelled, listed as cancelled', async ({ redis }) => {
    const { app, producer, redis: connection } = await startApi(redis);
    const job = (
      await app.inject({ method: 'POST', url: '/v1/jobs', payload: { text: 'x', task: 'summarize' } })
    ).json();
    const cancelled = await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ id: job.id, status: 'cancelled', error: { code: 'GB_ERR_CANCELLED' } });
    expect(await producer.queues.generate.getJob(job.id)).toBeUndefined();
    expect(await connection.exists(redisKeys.cancelled(redis.prefix, job.id))).toBe(1);
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json().status).toBe('cancelled');
    const result = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` });
    expect(result.statusCode).toBe(409);
    expect(result.json().error.message).toContain('cancelled');
    expect((await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` })).statusCode).toBe(200);

    const other = (
      await app.inject({ method: 'POST', url: '/v1/jobs', payload: { text: 'y', task: 'summarize' } })
    ).json();
    const list = (await app.inject({ method: 'GET', url: '/v1/jobs' })).json();
    expect(list).toMatchObject({
      object: 'list',
      data: [
        { id: other.id, status: 'queued' },
        { id: job.id, status: 'cancelled' },
      ],
    });
    expect(
      (await app.inject({ method: 'GET', url: '/v1/jobs?status=cancelled' }))
        .json()
        .data.map((v: { id: string }) => v.id),
    ).toEqual([job.id]);
    expect((await app.inject({ method: 'GET', url: '/v1/jobs?limit=1' })).json().data).toHaveLength(1);
    const badQuery = await app.inject({ method: 'GET', url: '/v1/jobs?status=sleeping' });
    expect(badQuery.statusCode).toBe(400);
    expect(badQuery.json().error.message).toMatch(/^query\.status: /);
  });
});
