import { describe, expect, vi } from 'vitest';
import { GembatchError, newJobId, QUEUE_NAMES, type GenerateJobData } from '@gembatch/contracts';
import { createLogger } from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, redisTest, type RedisTestContext } from '@gembatch/testing';
import { defineWorker, JobProducer, type Processor, type SettledEvent } from '../src/index.ts';

const WAIT = { timeout: 15_000, interval: 25 };

function textJob(): GenerateJobData {
  return {
    job_id: newJobId(),
    tenant: 'acme',
    task: 'summarize',
    options: {},
    max_tokens: 32,
    submitted_at: Date.now(),
    input: { type: 'text', sha256: 'a'.repeat(64) },
  };
}

/** A worker whose `onSettled` records each event, then throws: a listener bug must not reach the job. */
function workerWithThrowingListener(
  redis: RedisTestContext,
  processor: Processor<GenerateJobData, { done: true }>,
): SettledEvent<{ done: true }>[] {
  const events: SettledEvent<{ done: true }>[] = [];
  const connection = closeAfterTest(openTestRedis(redis.url, { blocking: true }));
  const worker = defineWorker({
    queue: QUEUE_NAMES.generate,
    prefix: redis.prefix,
    connection,
    concurrency: 1,
    processor,
    parse: (raw) => raw as GenerateJobData,
    logger: createLogger({ service: 'test', level: 'silent' }),
    onSettled(event) {
      events.push(event);
      throw new Error('listener bug');
    },
  });
  closeAfterTest({ close: () => worker.close(0) });
  return events;
}

function producerFor(redis: RedisTestContext) {
  return closeAfterTest(
    new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix, attempts: 3 }),
  );
}

describe('defineWorker listeners', () => {
  redisTest('a throwing onSettled leaves a completed job completed, and fires once', async ({ redis }) => {
    const producer = producerFor(redis);
    const job = textJob();
    await producer.submit(job, QUEUE_NAMES.generate);
    const events = workerWithThrowingListener(redis, async () => ({ done: true }));
    await vi.waitFor(
      async () => expect(await producer.queues.generate.getJobState(job.job_id)).toBe('completed'),
      WAIT,
    );
    const stored = await producer.queues.generate.getJob(job.job_id);
    expect(stored?.attemptsMade).toBe(1);
    expect(stored?.returnvalue).toEqual({ done: true });
    expect(events.map((event) => event.outcome)).toEqual(['completed']);
  });

  redisTest(
    'a throwing onSettled leaves a failed job failed with its own reason, and fires once',
    async ({ redis }) => {
      const producer = producerFor(redis);
      const job = textJob();
      await producer.submit(job, QUEUE_NAMES.generate);
      const events = workerWithThrowingListener(redis, async () => {
        throw new GembatchError('GB_ERR_BAD_REQUEST', 'not this input', { retryable: false });
      });
      await vi.waitFor(async () => expect(await producer.queues.generate.getJobState(job.job_id)).toBe('failed'), WAIT);
      expect((await producer.queues.generate.getJob(job.job_id))?.failedReason).toMatch(
        /^GB_ERR_BAD_REQUEST: not this input/,
      );
      expect(events.map((event) => event.outcome)).toEqual(['failed']);
    },
  );

  redisTest(
    'a throwing onSettled lets a parent suspend for its child and complete, each settlement reported once',
    async ({ redis }) => {
      const producer = producerFor(redis);
      const job = textJob();
      await producer.submit(job, QUEUE_NAMES.generate);
      const events = workerWithThrowingListener(redis, async (data, ctx) => {
        if (data.chunk) return { done: true };
        const [outcome] = await ctx.awaitChildren([
          {
            queue: QUEUE_NAMES.generate,
            id: `${ctx.jobId}-chunk-0`,
            data: { ...data, chunk: { index: 0, count: 1, text_sha256: 'b'.repeat(64) } },
          },
        ]);
        if (!outcome?.ok) throw new GembatchError('GB_ERR_INTERNAL', 'the child failed');
        return { done: true };
      });
      await vi.waitFor(
        async () => expect(await producer.queues.generate.getJobState(job.job_id)).toBe('completed'),
        WAIT,
      );
      expect((await producer.queues.generate.getJob(job.job_id))?.returnvalue).toEqual({ done: true });
      const parentOutcomes = events.filter((event) => event.jobId === job.job_id).map((event) => event.outcome);
      expect(parentOutcomes).toEqual(['suspended', 'completed']);
      expect(events.filter((event) => event.jobId !== job.job_id).map((event) => event.outcome)).toEqual(['completed']);
    },
  );
});
