import { FlowProducer, UnrecoverableError, Worker, type Job } from 'bullmq';
import { describe, expect, vi } from 'vitest';
import {
  GembatchError,
  newFileId,
  newJobId,
  QUEUE_NAMES,
  redisKeys,
  type ExtractJobData,
  type GenerateJobData,
  type GenerateJobResult,
  type QueueName,
} from '@gembatch/contracts';
import { closeAfterTest, openTestRedis, redisTest, type RedisTestContext } from '@gembatch/testing';
import {
  cancelJob,
  getJobResultSha256,
  getJobView,
  JobProducer,
  listJobs,
  type JobProducerOptions,
} from '../src/index.ts';

/** Bounded wait for a job to reach a view state (jobs move on their own; never a fixed sleep). */
const WAIT = { timeout: 15_000, interval: 25 };

function textJob(tenant = 'acme', submittedAt = Date.now()): GenerateJobData {
  return {
    job_id: newJobId(),
    tenant,
    task: 'summarize',
    options: { length: 'short' },
    max_tokens: 32,
    submitted_at: submittedAt,
    input: { type: 'text', sha256: 'a'.repeat(64) },
  };
}

function fileJob(tenant = 'acme'): ExtractJobData {
  return {
    job_id: newJobId(),
    tenant,
    task: 'summarize',
    options: { length: 'short' },
    max_tokens: 32,
    submitted_at: Date.now(),
    file: { id: newFileId(), sha256: 'b'.repeat(64), bytes: 1234, filename: 'scan.pdf' },
    metadata: { ref: 'r-1' },
  };
}

const RESULT: GenerateJobResult = {
  result_sha256: 'c'.repeat(64),
  usage: { prompt_tokens: 50, generated_tokens: 7, media_tokens: 0 },
  timings: {
    queue_wait_ms: 1,
    extract_ms: 2,
    time_to_first_token_ms: 3,
    inter_token_ms: 4,
    generate_ms: 5,
    total_ms: 6,
  },
  finish_reason: 'length',
  node: 'test-node',
  model: 'tiny',
  chunks: 1,
};

/** A promise and its resolver: lets a test hold a processor inside a state. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

function producerFor(redis: RedisTestContext, options: Partial<JobProducerOptions> = {}) {
  const connection = closeAfterTest(openTestRedis(redis.url));
  const producer = closeAfterTest(new JobProducer({ connection, prefix: redis.prefix, ...options }));
  return { connection, producer };
}

/** A real BullMQ worker with a test-only processor: these tests check the view, not the engine. */
function workerFor(
  redis: RedisTestContext,
  queue: QueueName,
  processor: (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>,
): Worker {
  const connection = closeAfterTest(openTestRedis(redis.url, { blocking: true }));
  const worker = new Worker(queue, processor, { connection, prefix: redis.prefix });
  // Forced: a processor still held by a gate must not keep the test from finishing.
  closeAfterTest({ close: () => worker.close(true) });
  return worker;
}

const STAGES = [QUEUE_NAMES.extract, QUEUE_NAMES.generate, QUEUE_NAMES.generateMedia] as const;

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error instanceof GembatchError ? error.code : String(error)),
  );
}

describe('JobProducer and job queries', () => {
  redisTest(
    'submits under the job id with the retry and retention policy, indexed for its tenant',
    async ({ redis }) => {
      const { connection, producer } = producerFor(redis, { attempts: 4, retentionSeconds: 3_600, backoffMs: 500 });
      const data = textJob();
      await producer.submit(data, QUEUE_NAMES.generate, { priority: 5 });
      await producer.submit(data, QUEUE_NAMES.generate, { priority: 5 });

      const job = await producer.queues.generate.getJob(data.job_id);
      expect(job?.name).toBe('summarize');
      expect(job?.data).toEqual(data);
      expect(job?.opts).toMatchObject({
        attempts: 4,
        backoff: { type: 'exponential', delay: 500 },
        removeOnComplete: { age: 3_600 },
        removeOnFail: { age: 3_600 },
        priority: 5,
      });
      expect(await job?.getState()).toBe('prioritized');
      expect(await producer.queues.generate.count()).toBe(1);
      expect(Number(await connection.zscore(redisKeys.tenantJobs(redis.prefix, 'acme'), data.job_id))).toBe(
        data.submitted_at,
      );
      expect(await connection.ttl(redisKeys.tenantJobs(redis.prefix, 'acme'))).toBeGreaterThan(0);

      const view = await getJobView(producer, data.job_id, 'acme');
      expect(view).toMatchObject({
        id: data.job_id,
        object: 'job',
        task: 'summarize',
        status: 'queued',
        progress: 0,
        created_at: new Date(data.submitted_at).toISOString(),
        started_at: null,
        error: null,
        input: {},
      });
      expect(await codeOf(producer.submit(data, QUEUE_NAMES.extract))).toBe('GB_ERR_INTERNAL');
    },
  );

  redisTest('follows a file job through extract and generate', async ({ redis }) => {
    const { producer } = producerFor(redis);
    const data = fileJob();
    await producer.submit(data, QUEUE_NAMES.extract);
    expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('queued');

    const extractGate = gate();
    workerFor(redis, QUEUE_NAMES.extract, async (job) => {
      await job.updateProgress(30);
      await extractGate.wait;
      const next: GenerateJobData = {
        ...data,
        input: { type: 'document', sha256: 'd'.repeat(64), file_id: data.file.id, media_type: 'application/pdf' },
      };
      await producer.queues.generate.add(data.task, next, { jobId: data.job_id });
      return { document_sha256: 'd'.repeat(64) };
    });
    await vi.waitFor(
      async () =>
        expect(await getJobView(producer, data.job_id, 'acme')).toMatchObject({ status: 'extracting', progress: 30 }),
      WAIT,
    );
    extractGate.open();
    await vi.waitFor(
      async () =>
        expect(await getJobView(producer, data.job_id, 'acme')).toMatchObject({
          status: 'queued',
          input: { file_id: data.file.id, media_type: 'application/pdf' },
        }),
      WAIT,
    );
    expect(await codeOf(getJobResultSha256(producer, data.job_id, 'acme'))).toBe('GB_ERR_CONFLICT');

    const generateGate = gate();
    workerFor(redis, QUEUE_NAMES.generate, async () => {
      await generateGate.wait;
      return RESULT;
    });
    await vi.waitFor(
      async () => expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('running'),
      WAIT,
    );
    generateGate.open();
    await vi.waitFor(
      async () => expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('completed'),
      WAIT,
    );

    const view = await getJobView(producer, data.job_id, 'acme');
    const extractJob = await producer.queues.extract.getJob(data.job_id);
    expect(view).toMatchObject({
      progress: 100,
      usage: RESULT.usage,
      timings: RESULT.timings,
      finish_reason: 'length',
      error: null,
      metadata: { ref: 'r-1' },
    });
    expect(view.started_at).toBe(new Date(extractJob?.processedOn ?? 0).toISOString());
    expect(view.finished_at).not.toBeNull();
    expect(await getJobResultSha256(producer, data.job_id, 'acme')).toBe(RESULT.result_sha256);
    expect(await codeOf(cancelJob(producer, data.job_id, 'acme'))).toBe('GB_ERR_CONFLICT');
  });

  redisTest(
    "reads a completed job's result without BullMQ's state scripts, for its tenant only, and defers a cancelled one to the whole record",
    async ({ redis }) => {
      const { connection, producer } = producerFor(redis);
      const text = textJob();
      const media = textJob();
      const mediaResult = { ...RESULT, result_sha256: 'f'.repeat(64) };
      // One job completed in `generate`, then queued in `generate-media`: the later stage decides, as for the whole record.
      await producer.submit(text, QUEUE_NAMES.generate);
      await producer.submit(media, QUEUE_NAMES.generate);
      workerFor(redis, QUEUE_NAMES.generate, async () => RESULT);
      await vi.waitFor(
        async () => expect((await getJobView(producer, media.job_id, 'acme')).status).toBe('completed'),
        WAIT,
      );
      await producer.queues[QUEUE_NAMES.generateMedia].add(media.task, media, { jobId: media.job_id });
      expect((await getJobView(producer, media.job_id, 'acme')).status).toBe('queued');
      expect(await codeOf(getJobResultSha256(producer, media.job_id, 'acme'))).toBe('GB_ERR_CONFLICT');
      workerFor(redis, QUEUE_NAMES.generateMedia, async () => mediaResult);
      await vi.waitFor(
        async () => expect((await getJobView(producer, media.job_id, 'acme')).status).toBe('completed'),
        WAIT,
      );
      await vi.waitFor(
        async () => expect((await getJobView(producer, text.job_id, 'acme')).status).toBe('completed'),
        WAIT,
      );

      const stateReads = STAGES.map((queue) => vi.spyOn(producer.queues[queue], 'getJobState'));
      expect(await getJobResultSha256(producer, text.job_id, 'acme')).toBe(RESULT.result_sha256);
      expect(await getJobResultSha256(producer, media.job_id, 'acme')).toBe(mediaResult.result_sha256);
      for (const spy of stateReads) expect(spy).not.toHaveBeenCalled();

      expect(await codeOf(getJobResultSha256(producer, text.job_id, 'globex'))).toBe('GB_ERR_NOT_FOUND');
      expect(await codeOf(getJobResultSha256(producer, '../../etc', 'acme'))).toBe('GB_ERR_NOT_FOUND');
      // A cancel that raced the job's completion leaves a marker: the job reads cancelled, with no result.
      const marker = {
        tenant: 'acme',
        task: text.task,
        submitted_at: text.submitted_at,
        cancelled_at: Date.now(),
        input: {},
      };
      await connection.set(redisKeys.cancelled(redis.prefix, text.job_id), JSON.stringify(marker));
      const refused = await getJobResultSha256(producer, text.job_id, 'acme').catch((e: unknown) => e as GembatchError);
      expect(refused).toMatchObject({ code: 'GB_ERR_CONFLICT' });
      expect((refused as GembatchError).message).toContain('cancelled');
    },
  );

  redisTest("runs BullMQ's state script only in the stage queues that hold the job", async ({ redis }) => {
    const { producer } = producerFor(redis);
    const data = textJob();
    await producer.submit(data, QUEUE_NAMES.generate);
    const stateReads = STAGES.map((queue) => vi.spyOn(producer.queues[queue], 'getJobState'));
    expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('queued');
    expect(stateReads.map((spy) => spy.mock.calls.length)).toEqual([0, 1, 0]);
    expect(await codeOf(getJobView(producer, newJobId(), 'acme'))).toBe('GB_ERR_NOT_FOUND');
    expect(stateReads.map((spy) => spy.mock.calls.length)).toEqual([0, 1, 0]);
  });

  redisTest('reports a final failure with its typed error and refuses the result', async ({ redis }) => {
    const { producer } = producerFor(redis);
    const data = textJob();
    await producer.submit(data, QUEUE_NAMES.generate);
    workerFor(redis, QUEUE_NAMES.generate, async () => {
      throw new UnrecoverableError('GB_ERR_CONTEXT_OVERFLOW: the input needs 9000 tokens');
    });
    await vi.waitFor(async () => expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('failed'), WAIT);
    const view = await getJobView(producer, data.job_id, 'acme');
    expect(view.error).toEqual({ code: 'GB_ERR_CONTEXT_OVERFLOW', message: 'the input needs 9000 tokens' });
    expect(view.finished_at).not.toBeNull();
    const refused = await getJobResultSha256(producer, data.job_id, 'acme').catch((e: unknown) => e as GembatchError);
    expect(refused).toMatchObject({ code: 'GB_ERR_CONFLICT' });
    expect((refused as GembatchError).message).toContain('GB_ERR_CONTEXT_OVERFLOW');
    expect(await codeOf(cancelJob(producer, data.job_id, 'acme'))).toBe('GB_ERR_CONFLICT');
  });

  redisTest('keeps a job that will retry queued, carrying its last error', async ({ redis }) => {
    // A minute of backoff holds the job in `delayed` for the whole test.
    const { producer } = producerFor(redis, { attempts: 3, backoffMs: 60_000 });
    const data = textJob();
    await producer.submit(data, QUEUE_NAMES.generate);
    workerFor(redis, QUEUE_NAMES.generate, async () => {
      throw new Error('GB_ERR_INFERENCE: decode failed');
    });
    await vi.waitFor(
      async () => expect((await getJobView(producer, data.job_id, 'acme')).error?.code).toBe('GB_ERR_INFERENCE'),
      WAIT,
    );
    expect(await (await producer.queues.generate.getJob(data.job_id))?.getState()).toBe('delayed');
    expect(await getJobView(producer, data.job_id, 'acme')).toMatchObject({
      status: 'queued',
      finished_at: null,
      error: { code: 'GB_ERR_INFERENCE', message: 'decode failed' },
    });
  });

  redisTest("hides other tenants' jobs and unknown ids", async ({ redis }) => {
    const { producer } = producerFor(redis);
    const data = textJob('acme');
    await producer.submit(data, QUEUE_NAMES.generate);
    expect(await codeOf(getJobView(producer, data.job_id, 'globex'))).toBe('GB_ERR_NOT_FOUND');
    expect(await codeOf(getJobResultSha256(producer, data.job_id, 'globex'))).toBe('GB_ERR_NOT_FOUND');
    expect(await codeOf(cancelJob(producer, data.job_id, 'globex'))).toBe('GB_ERR_NOT_FOUND');
    expect(await codeOf(getJobView(producer, newJobId(), 'acme'))).toBe('GB_ERR_NOT_FOUND');
    expect(await codeOf(getJobView(producer, `${data.job_id}:chunk:0`, 'acme'))).toBe('GB_ERR_NOT_FOUND');
    expect(await codeOf(getJobView(producer, '../../etc', 'acme'))).toBe('GB_ERR_NOT_FOUND');
    expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('queued');
  });

  redisTest('cancels a waiting job: removed from its queue, reads cancelled, idempotent', async ({ redis }) => {
    const { connection, producer } = producerFor(redis, { retentionSeconds: 600 });
    const data = fileJob();
    await producer.submit(data, QUEUE_NAMES.extract);
    const cancelled = await cancelJob(producer, data.job_id, 'acme');
    expect(cancelled).toMatchObject({
      id: data.job_id,
      status: 'cancelled',
      task: 'summarize',
      error: { code: 'GB_ERR_CANCELLED' },
      input: { file_id: data.file.id },
      metadata: { ref: 'r-1' },
    });
    expect(await producer.queues.extract.getJob(data.job_id)).toBeUndefined();
    expect(await getJobView(producer, data.job_id, 'acme')).toEqual(cancelled);
    expect(await cancelJob(producer, data.job_id, 'acme')).toEqual(cancelled);
    expect(await codeOf(getJobView(producer, data.job_id, 'globex'))).toBe('GB_ERR_NOT_FOUND');
    const refused = await getJobResultSha256(producer, data.job_id, 'acme').catch((e: unknown) => e as GembatchError);
    expect(refused).toMatchObject({ code: 'GB_ERR_CONFLICT' });
    expect((refused as GembatchError).message).toContain('cancelled');
    const ttl = await connection.ttl(redisKeys.cancelled(redis.prefix, data.job_id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(600);
  });

  redisTest('cancels a running job through the cancel channel', async ({ redis }) => {
    const { producer } = producerFor(redis);
    const data = textJob();
    await producer.submit(data, QUEUE_NAMES.generate);
    const worker = workerFor(redis, QUEUE_NAMES.generate, async (_job, _token, signal) => {
      await new Promise((resolve) => signal?.addEventListener('abort', resolve, { once: true }));
      throw new UnrecoverableError('GB_ERR_CANCELLED: aborted by request');
    });
    // What every worker node does: abort the job it holds when its id is published.
    const subscriber = closeAfterTest(openTestRedis(redis.url, { name: `${redis.prefix}:subscriber` }));
    await subscriber.subscribe(redisKeys.cancelChannel(redis.prefix));
    subscriber.on('message', (_channel, jobId: string) => worker.cancelJob(jobId, 'cancelled by request'));

    await vi.waitFor(
      async () => expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('running'),
      WAIT,
    );
    expect((await cancelJob(producer, data.job_id, 'acme')).status).toBe('cancelled');
    await vi.waitFor(
      async () => expect(await (await producer.queues.generate.getJob(data.job_id))?.getState()).toBe('failed'),
      WAIT,
    );
    expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('cancelled');
  });

  redisTest('cancels a chunked job: waiting children removed, running ones aborted by id', async ({ redis }) => {
    const { connection, producer } = producerFor(redis);
    const data = textJob();
    const flows = closeAfterTest(new FlowProducer({ connection, prefix: redis.prefix }));
    // Ids as the worker names chunk children.
    const childIds = [0, 1].map((n) => `${data.job_id}-chunk-${n}`);
    await flows.add({
      name: data.task,
      queueName: QUEUE_NAMES.generate,
      data,
      opts: { jobId: data.job_id },
      children: childIds.map((id, index) => ({
        name: data.task,
        queueName: QUEUE_NAMES.generate,
        data: { ...data, chunk: { index, count: 2, text_sha256: 'e'.repeat(64) } },
        opts: { jobId: id },
      })),
    });
    expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('running');

    // One worker slot: one child runs (held until aborted), the other waits.
    const started: string[] = [];
    const worker = workerFor(redis, QUEUE_NAMES.generate, async (job, _token, signal) => {
      if (!(job.data as GenerateJobData).chunk) return RESULT;
      started.push(job.id as string);
      await new Promise((resolve) => signal?.addEventListener('abort', resolve, { once: true }));
      throw new UnrecoverableError('GB_ERR_CANCELLED: aborted by request');
    });
    await vi.waitFor(() => expect(started).toHaveLength(1), WAIT);
    const [running] = started as [string];
    const waiting = childIds.find((id) => id !== running) as string;

    const subscriber = closeAfterTest(openTestRedis(redis.url, { name: `${redis.prefix}:subscriber` }));
    await subscriber.subscribe(redisKeys.cancelChannel(redis.prefix));
    const published: string[] = [];
    subscriber.on('message', (_channel, id: string) => {
      published.push(id);
      worker.cancelJob(id, 'cancelled by request');
    });

    expect((await cancelJob(producer, data.job_id, 'acme')).status).toBe('cancelled');
    await vi.waitFor(() => expect(published.sort()).toEqual([data.job_id, running].sort()), WAIT);
    expect(await producer.queues.generate.getJob(waiting)).toBeUndefined();
    await vi.waitFor(
      async () => expect(await (await producer.queues.generate.getJob(running))?.getState()).toBe('failed'),
      WAIT,
    );
    expect(started).toEqual([running]);
    expect((await getJobView(producer, data.job_id, 'acme')).status).toBe('cancelled');
  });

  redisTest("lists a tenant's recent jobs, newest first, filtered by status", async ({ redis }) => {
    const { connection, producer } = producerFor(redis);
    const now = Date.now();
    const jobs = [textJob('acme', now - 3_000), textJob('acme', now - 2_000), textJob('acme', now - 1_000)];
    for (const job of jobs) await producer.submit(job, QUEUE_NAMES.generate);
    await producer.submit(textJob('globex', now), QUEUE_NAMES.generate);
    await cancelJob(producer, (jobs[0] as GenerateJobData).job_id, 'acme');
    // An index entry whose job expired: listed never, pruned once seen.
    await connection.zadd(redisKeys.tenantJobs(redis.prefix, 'acme'), now - 500, newJobId());

    const all = await listJobs(producer, 'acme');
    expect(all.map((v) => v.id)).toEqual(jobs.map((j) => j.job_id).reverse());
    expect(await connection.zcard(redisKeys.tenantJobs(redis.prefix, 'acme'))).toBe(3);
    expect((await listJobs(producer, 'acme', { status: 'cancelled' })).map((v) => v.id)).toEqual([jobs[0]?.job_id]);
    expect((await listJobs(producer, 'acme', { status: 'queued', limit: 1 })).map((v) => v.id)).toEqual([
      jobs[2]?.job_id,
    ]);
    expect(await listJobs(producer, 'nobody')).toEqual([]);
  });
});
