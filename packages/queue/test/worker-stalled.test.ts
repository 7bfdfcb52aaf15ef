import { Worker } from 'bullmq';
import { describe, expect, it, vi } from 'vitest';
import { decodeFailedReason, newJobId, QUEUE_NAMES, type GenerateJobData } from '@gembatch/contracts';
import { createLogger } from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, redisTest } from '@gembatch/testing';
import { defineWorker, JobProducer } from '../src/index.ts';

const WAIT = { timeout: 15_000, interval: 25 };
/** Why 500 ms: the lock of the job the dead node held must expire quickly for the stall check to see it. */
const LOCK_MS = 500;

describe('defineWorker stall limit', () => {
  redisTest(
    'a job that stalled more often than maxStalledCount fails as GB_ERR_JOB_STALLED (not retryable), not GB_ERR_INTERNAL',
    async ({ redis }) => {
      const producer = closeAfterTest(
        new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix, attempts: 3 }),
      );
      const job: GenerateJobData = {
        job_id: newJobId(),
        tenant: 'acme',
        task: 'summarize',
        options: {},
        max_tokens: 32,
        submitted_at: Date.now(),
        input: { type: 'text', sha256: 'a'.repeat(64) },
      };
      await producer.submit(job, QUEUE_NAMES.generate);

      // A node that takes the job and dies: it holds the lock and never renews it.
      const dead = new Worker(QUEUE_NAMES.generate, null, {
        connection: closeAfterTest(openTestRedis(redis.url, { blocking: true })),
        prefix: redis.prefix,
        lockDuration: LOCK_MS,
        autorun: false,
      });
      const taken = await dead.getNextJob('dead-node-token');
      expect(taken?.id).toBe(job.job_id);
      await dead.close(true);

      let ran = 0;
      const worker = defineWorker({
        queue: QUEUE_NAMES.generate,
        prefix: redis.prefix,
        connection: closeAfterTest(openTestRedis(redis.url, { blocking: true })),
        concurrency: 1,
        processor: async () => {
          ran += 1;
          return { done: true };
        },
        parse: (raw) => raw as GenerateJobData,
        logger: createLogger({ service: 'test', level: 'silent' }),
        lockDurationMs: LOCK_MS,
        stalledIntervalMs: 200,
        maxStalledCount: 0,
      });
      closeAfterTest({ close: () => worker.close(0) });

      await vi.waitFor(async () => expect(await producer.queues.generate.getJobState(job.job_id)).toBe('failed'), WAIT);
      const failed = await producer.queues.generate.getJob(job.job_id);
      expect(failed?.failedReason).toMatch(/^GB_ERR_JOB_STALLED: /);
      expect(decodeFailedReason(failed?.failedReason).code).toBe('GB_ERR_JOB_STALLED');
      // Not retried: one stall past the limit ends it.
      expect(ran).toBe(0);
    },
  );

  it('a failedReason BullMQ wrote itself reads as GB_ERR_JOB_STALLED too', () => {
    expect(decodeFailedReason('job stalled more than allowable limit')).toEqual({
      code: 'GB_ERR_JOB_STALLED',
      message: expect.stringContaining('GEMBATCH_MAX_STALLED_COUNT'),
    });
  });
});
