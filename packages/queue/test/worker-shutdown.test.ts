import { describe, expect, vi } from 'vitest';
import { GembatchError, newJobId, QUEUE_NAMES, type GenerateJobData } from '@gembatch/contracts';
import { createLogger } from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, redisTest, type RedisTestContext } from '@gembatch/testing';
import { defineWorker, JobProducer, type GembatchWorker, type Processor } from '../src/index.ts';

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

/** Decodes until its signal aborts, then fails the way the engine does: GB_ERR_CANCELLED, not retryable. */
const untilAborted: Processor<GenerateJobData, { done: true }> = (_payload, ctx) =>
  new Promise((_resolve, reject) => {
    ctx.progress(10);
    const cancelled = () => reject(new GembatchError('GB_ERR_CANCELLED', 'generation was cancelled'));
    // The abort may come before the processor starts (the engine checks `aborted` between tokens the same way).
    if (ctx.signal.aborted) cancelled();
    ctx.signal.addEventListener('abort', cancelled, { once: true });
  });

function workerFor(redis: RedisTestContext, processor: Processor<GenerateJobData, { done: true }>): GembatchWorker {
  const connection = closeAfterTest(openTestRedis(redis.url, { blocking: true }));
  const worker = defineWorker({
    queue: QUEUE_NAMES.generate,
    prefix: redis.prefix,
    connection,
    concurrency: 2,
    processor,
    parse: (raw) => raw as GenerateJobData,
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
  closeAfterTest({ close: () => worker.close(0) });
  return worker;
}

describe('defineWorker shutdown', () => {
  redisTest(
    'jobs still running when the grace period ends go back to waiting (not failed, not delayed), with no attempt used, and the next worker completes them',
    async ({ redis }) => {
      const producer = closeAfterTest(
        new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix, attempts: 3 }),
      );
      const jobs = [textJob(), textJob()];
      for (const job of jobs) await producer.submit(job, QUEUE_NAMES.generate);
      const queue = producer.queues.generate;
      const first = workerFor(redis, untilAborted);
      await vi.waitFor(async () => expect(await queue.getActiveCount()).toBe(2), WAIT);

      await first.close(50);
      for (const { job_id } of jobs) {
        const job = await queue.getJob(job_id);
        expect(await job?.getState()).toBe('waiting');
        expect(job?.attemptsMade).toBe(0);
        expect(job?.failedReason ?? '').toBe('');
      }

      workerFor(redis, async () => ({ done: true }));
      for (const { job_id } of jobs) {
        await vi.waitFor(async () => expect(await queue.getJobState(job_id)).toBe('completed'), WAIT);
        expect((await queue.getJob(job_id))?.attemptsMade).toBe(1);
      }
    },
  );

  redisTest(
    'a job cancelled by request while the worker runs still fails GB_ERR_CANCELLED (cancellation is not a hand-back)',
    async ({ redis }) => {
      const producer = closeAfterTest(
        new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix, attempts: 3 }),
      );
      const job = textJob();
      await producer.submit(job, QUEUE_NAMES.generate);
      const queue = producer.queues.generate;
      const worker = workerFor(redis, untilAborted);
      await vi.waitFor(async () => expect(await queue.getActiveCount()).toBe(1), WAIT);
      expect(worker.cancel(job.job_id, 'cancelled by request')).toBe(true);
      await vi.waitFor(async () => expect(await queue.getJobState(job.job_id)).toBe('failed'), WAIT);
      expect((await queue.getJob(job.job_id))?.failedReason).toMatch(/^GB_ERR_CANCELLED/);
    },
  );
});
