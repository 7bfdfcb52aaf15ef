import { describe, expect, vi } from 'vitest';
import { decodeFailedReason, GembatchError, newJobId, QUEUE_NAMES, type GenerateJobData } from '@gembatch/contracts';
import { createLogger } from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, redisTest } from '@gembatch/testing';
import { defineWorker, JobProducer } from '../src/index.ts';

describe('awaitChildren', () => {
  redisTest(
    'a child that fails for good fails its parent with the child’s code (the parent used to wait forever on re-entry)',
    async ({ redis }) => {
      const producer = closeAfterTest(
        new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix, attempts: 1 }),
      );
      const worker = defineWorker<GenerateJobData, unknown>({
        queue: QUEUE_NAMES.generate,
        prefix: redis.prefix,
        connection: closeAfterTest(openTestRedis(redis.url, { blocking: true })),
        concurrency: 4,
        logger: createLogger({ service: 'test', level: 'silent' }),
        parse: (raw) => raw as GenerateJobData,
        processor: async (data, ctx) => {
          if (data.chunk) {
            if (data.chunk.index === 1) throw new GembatchError('GB_ERR_EMPTY_INPUT', 'this chunk is blank');
            return { chunk: data.chunk.index };
          }
          const children = [0, 1, 2].map((index) => ({
            queue: QUEUE_NAMES.generate,
            id: `${ctx.jobId}-chunk-${index}`,
            data: { ...data, chunk: { index, count: 3, text_sha256: 'a'.repeat(64) } },
          }));
          const outcomes = await ctx.awaitChildren(children);
          const failed = outcomes.find((o) => !o.ok);
          if (failed && !failed.ok)
            throw new GembatchError(decodeFailedReason(failed.failedReason).code, 'a chunk failed');
          return { chunks: outcomes.length };
        },
      });
      closeAfterTest({ close: () => worker.close(1_000) });
      const data: GenerateJobData = {
        job_id: newJobId(),
        tenant: 'acme',
        task: 'summarize',
        options: {},
        max_tokens: 8,
        submitted_at: Date.now(),
        input: { type: 'text', sha256: 'b'.repeat(64) },
      };
      await producer.submit(data, QUEUE_NAMES.generate);
      const parent = await vi.waitFor(
        async () => {
          const job = await producer.queues.generate.getJob(data.job_id);
          if (!job || (await job.getState()) !== 'failed')
            throw new Error(`parent is ${job ? await job.getState() : 'missing'}`);
          return job;
        },
        { timeout: 20_000, interval: 50 },
      );
      // The whole reason, so a failure shows the message too (CI once saw GB_ERR_INTERNAL here, not reproduced since).
      expect(decodeFailedReason(parent.failedReason)).toMatchObject({ code: 'GB_ERR_EMPTY_INPUT' });
    },
  );
});
