import { describe, expect, vi } from 'vitest';
import { newJobId, QUEUE_NAMES, type GenerateJobData } from '@gembatch/contracts';
import { createLogger } from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, redisTest } from '@gembatch/testing';
import { defineWorker, JobProducer } from '../src/index.ts';

const WAIT = { timeout: 15_000, interval: 25 };

describe('defineWorker progress', () => {
  redisTest(
    'a short job writes no progress (not its first tokens, not 100 %): taking and finishing it are its only Redis writes',
    async ({ redis }) => {
      const producer = closeAfterTest(
        new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix }),
      );
      const connection = closeAfterTest(openTestRedis(redis.url, { blocking: true }));
      const monitor = closeAfterTest(openTestRedis(redis.url));
      const progressEvents: unknown[] = [];
      const worker = defineWorker({
        queue: QUEUE_NAMES.generate,
        prefix: redis.prefix,
        connection,
        concurrency: 1,
        // What the generate processor reports for a 4-token job: every token, the last one 100 %.
        processor: async (_payload, ctx) => {
          for (const n of [1, 2, 3, 4]) ctx.progress((n / 4) * 100);
          return { done: true };
        },
        parse: (raw) => raw as GenerateJobData,
        logger: createLogger({ service: 'test', level: 'silent' }),
      });
      closeAfterTest({ close: () => worker.close(0) });
      const data: GenerateJobData = {
        job_id: newJobId(),
        tenant: 'acme',
        task: 'summarize',
        options: {},
        max_tokens: 4,
        submitted_at: Date.now(),
        input: { type: 'text', sha256: 'a'.repeat(64) },
      };
      const events = `${redis.prefix}:${QUEUE_NAMES.generate}:events`;
      await producer.submit(data, QUEUE_NAMES.generate);
      const job = await vi.waitFor(async () => {
        const found = await producer.queues.generate.getJob(data.job_id);
        if ((await found?.getState()) !== 'completed') throw new Error('not completed yet');
        return found;
      }, WAIT);
      expect(job?.progress).toBe(0);
      for (const [, fields] of await monitor.xrange(events, '-', '+'))
        if (fields.includes('progress')) progressEvents.push(fields);
      expect(progressEvents).toEqual([]);
    },
  );
});
