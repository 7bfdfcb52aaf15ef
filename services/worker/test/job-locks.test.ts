import { describe, expect } from 'vitest';
import { ensureTestModel, redisTest, TEST_MODELS } from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

/** A short lock, so a decode of a few seconds outlives it many times over unless it is renewed. */
const LOCK_MS = 1_000;

describe('job locks', () => {
  redisTest(
    'a decode several times longer than the job lock keeps its lock: it completes once and is never taken back as stalled',
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        // A model that never ends on its own: the tiny one ended after 758 tokens on one CPU, too soon for the premise.
        GEMBATCH_MODEL: await ensureTestModel({ ...TEST_MODELS.tiny, name: 'gembatch-tiny-endless', endless: true }),
        GEMBATCH_SEQUENCES: '1',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '8192',
        GEMBATCH_JOB_LOCK_MS: String(LOCK_MS),
        // A stall check four times per lock: a lock left to expire would be noticed at once.
        GEMBATCH_STALLED_CHECK_MS: '250',
        GEMBATCH_MAX_STALLED_COUNT: '0',
      });
      const id = await worker.submitText('A long story about a lighthouse keeper and the sea.', 'summarize', {
        max_tokens: 7_500,
      });
      const view = await worker.settle(id, 120_000);
      expect(view.error).toBeNull();
      expect(view.status).toBe('completed');
      const job = await worker.producer.queues.generate.getJob(id);
      // The premise: the decode outlived the lock at least twice (else the test proves nothing).
      expect((job?.finishedOn ?? 0) - (job?.processedOn ?? 0)).toBeGreaterThan(2 * LOCK_MS);
      expect(job?.attemptsMade).toBe(1);
      expect(job?.attemptsStarted).toBe(1);
      expect(job?.stalledCounter ?? 0).toBe(0);
      // No lost lock, no stall, no worker error was logged.
      expect(worker.logLines.filter((line) => /"level":"(warn|error)"/.test(line))).toEqual([]);
    },
  );
});
