import { describe, expect } from 'vitest';
import { GembatchError, QUEUE_NAMES, redisKeys } from '@gembatch/contracts';
import { defineWorker, JobProducer } from '@gembatch/queue';
import { createLogger } from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, redisTest } from '@gembatch/testing';
import { readJobOutcome, readJobOutcomes, type RequestOutcome } from '../src/index.ts';

const RESULT = {
  result_sha256: 'a'.repeat(64),
  usage: { prompt_tokens: 12, generated_tokens: 3 },
  timings: { queue_wait_ms: 1, time_to_first_token_ms: 2, inter_token_ms: 1, generate_ms: 4, total_ms: 6 },
  finish_reason: 'stop',
  node: 'node-1',
  model: 'tiny',
  chunks: 1,
};

/** What each test job's processor does, by job id. */
type Ending = 'complete' | 'complete-unreadable' | 'fail';

describe('reading job outcomes for batch requests', () => {
  redisTest(
    'the one-round-trip read of many jobs answers as the one-by-one read does, in every state a request can be in',
    async ({ redis }) => {
      const connection = closeAfterTest(openTestRedis(redis.url));
      const producer = closeAfterTest(new JobProducer({ connection, prefix: redis.prefix }));
      const generate = producer.queues[QUEUE_NAMES.generate];
      const endings: Record<string, Ending> = {
        job_done: 'complete',
        'job_done-then-cancelled': 'complete',
        job_unreadable: 'complete-unreadable',
        job_failed: 'fail',
      };
      for (const jobId of Object.keys(endings)) await generate.add('generate', {}, { jobId, attempts: 1 });
      const finished = new Set<string>();
      let allFinished: () => void = () => undefined;
      const done = new Promise<void>((resolveAll) => (allFinished = resolveAll));
      const worker = defineWorker<unknown, unknown>({
        queue: QUEUE_NAMES.generate,
        prefix: redis.prefix,
        connection: closeAfterTest(openTestRedis(redis.url, { blocking: true })),
        concurrency: 4,
        logger: createLogger({ service: 'test', level: 'silent' }),
        parse: (data) => data,
        processor: async (_payload, ctx) => {
          const ending = endings[ctx.jobId];
          if (ending === 'fail')
            throw new GembatchError('GB_ERR_CONTEXT_OVERFLOW', 'the input is longer than the context');
          return ending === 'complete' ? RESULT : { not: 'a result' };
        },
        onSettled: ({ jobId }) => {
          finished.add(jobId);
          if (finished.size === Object.keys(endings).length) allFinished();
        },
      });
      closeAfterTest({ close: () => worker.close() });
      await done;
      await worker.close();
      // Still waiting: in generate (one of them cancelled), and in extract (a file job).
      await generate.add('generate', {}, { jobId: 'job_waiting' });
      await generate.add('generate', {}, { jobId: 'job_waiting-cancelled' });
      await producer.queues[QUEUE_NAMES.extract].add('extract', {}, { jobId: 'job_extracting' });
      for (const jobId of ['job_done-then-cancelled', 'job_waiting-cancelled', 'job_gone-cancelled'])
        await connection.set(redisKeys.cancelled(redis.prefix, jobId), '1');

      const jobIds = [
        ...Object.keys(endings),
        'job_waiting',
        'job_waiting-cancelled',
        'job_extracting',
        'job_gone',
        'job_gone-cancelled',
      ];
      const together = await readJobOutcomes(producer, connection, redis.prefix, jobIds);
      const oneByOne = await Promise.all(
        jobIds.map((jobId) => readJobOutcome(producer, connection, redis.prefix, jobId)),
      );
      // `at` is the finish time where there is one, else the time of the read.
      const withoutTime = (outcomes: Array<RequestOutcome | undefined>) =>
        outcomes.map((outcome) => (outcome ? { ...outcome, at: 0 } : outcome));
      expect(withoutTime(together)).toEqual(withoutTime(oneByOne));
      expect(Object.fromEntries(jobIds.map((jobId, i) => [jobId, together[i]?.ok]))).toEqual({
        job_done: true,
        'job_done-then-cancelled': true,
        job_unreadable: undefined,
        job_failed: false,
        job_waiting: undefined,
        'job_waiting-cancelled': false,
        job_extracting: undefined,
        job_gone: false,
        'job_gone-cancelled': false,
      });
      expect(together[0]).toEqual(oneByOne[0]);
      expect(together[0]).toMatchObject({
        sha: RESULT.result_sha256,
        usage: { prompt_tokens: 12, generated_tokens: 3 },
      });
      expect(together[3]).toMatchObject({ code: 'GB_ERR_CONTEXT_OVERFLOW', at: oneByOne[3]?.at });
      expect(together[5]).toMatchObject({ code: 'GB_ERR_CANCELLED' });
      expect(together[7]).toMatchObject({ code: 'GB_ERR_INTERNAL' });
      expect(together[8]).toMatchObject({ code: 'GB_ERR_CANCELLED' });
    },
  );
});
