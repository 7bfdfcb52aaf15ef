import { describe, expect, vi } from 'vitest';
import { ensureTestModel, makeLongText, redisTest } from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

/** Tokens each job asks for: far more than the grace period lets the tiny model decode. */
const LONG_GENERATION_TOKENS = 800;
/** Context per sequence: room for the prompt plus `LONG_GENERATION_TOKENS`. */
const CONTEXT = '4096';

describe('worker shutdown', () => {
  redisTest(
    'past the grace period active jobs go back to waiting with their attempt count intact, and another node completes them',
    async ({ redis }) => {
      const model = await ensureTestModel('tiny');
      const first = await startWorker(redis, { GEMBATCH_MODEL: model, GEMBATCH_SEQUENCES: '4', GEMBATCH_CONTEXT_PER_SEQUENCE: CONTEXT, GEMBATCH_NODE_ID: 'node-a' });
      const queue = first.producer.queues.generate;
      // ignore_eos is not reachable through the API; the tiny model's random weights rarely emit EOS,
      // and the assertion below only needs the jobs to be active when the grace period ends.
      const ids = await Promise.all(Array.from({ length: 4 }, (_, i) => first.submitText(`Shutdown document ${i}. ${makeLongText(40, i)}`, 'summarize', { max_tokens: LONG_GENERATION_TOKENS })));

      // All four decoding (progress written) before the drain starts.
      await vi.waitFor(
        async () => {
          const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
          const decoding = jobs.filter((job) => typeof job?.progress === 'number' && job.progress > 0);
          if (decoding.length < ids.length) throw new Error(`${decoding.length}/${ids.length} decoding`);
        },
        { timeout: 30_000, interval: 25 },
      );
      await first.node.close(100);

      for (const id of ids) {
        const job = await queue.getJob(id);
        expect(await job?.getState(), `job ${id} after the drain`).toBe('waiting');
        // Handed back, not failed: no attempt was used up, and no failure reason was written.
        expect(job?.attemptsMade).toBe(0);
        expect(job?.failedReason ?? '').toBe('');
      }

      const second = await startWorker(redis, { GEMBATCH_MODEL: model, GEMBATCH_SEQUENCES: '4', GEMBATCH_CONTEXT_PER_SEQUENCE: CONTEXT, GEMBATCH_NODE_ID: 'node-b', GEMBATCH_DATA_DIR: first.dataDir });
      const views = await Promise.all(ids.map((id) => second.settle(id, 120_000)));
      for (const view of views) {
        expect(view.error).toBeNull();
        expect(view.status).toBe('completed');
      }
      for (const id of ids) expect((await queue.getJob(id))?.attemptsMade).toBe(1);
    },
    180_000,
  );

  redisTest(
    'chunk children decoding at shutdown go back to waiting, their parent keeps waiting for them, and another node finishes the flow',
    async ({ redis }) => {
      const model = await ensureTestModel('tiny');
      const env = { GEMBATCH_MODEL: model, GEMBATCH_SEQUENCES: '2', GEMBATCH_CONTEXT_PER_SEQUENCE: CONTEXT, GEMBATCH_CHUNK_OVERLAP_TOKENS: '16' };
      const first = await startWorker(redis, { ...env, GEMBATCH_NODE_ID: 'node-a' });
      const engine = first.node.engine;
      if (!engine) throw new Error('engine not loaded');
      // Two chunks: each leaves 4096 - max_tokens for its slice of the input, and the reduce step
      // fits both 600-token partials (re-tokenized random text runs longer than 600 tokens).
      let text = makeLongText(400, 3);
      while ((await engine.countTokens(text)) < 4_000) text += `\n${makeLongText(100, text.length)}`;
      const jobId = await first.submitText(text, 'summarize', { max_tokens: 600 });
      const queue = first.producer.queues.generate;
      const chunkIds = await vi.waitFor(
        async () => {
          const decoding = (await queue.getActive()).filter((job) => job.data.chunk !== undefined && typeof job.progress === 'number' && job.progress > 0);
          if (decoding.length < 2) throw new Error(`${decoding.length} chunks decoding`);
          return decoding.map((job) => job.id as string);
        },
        { timeout: 30_000, interval: 25 },
      );
      await first.node.close(50);

      expect(await (await queue.getJob(jobId))?.getState()).toBe('waiting-children');
      // A chunk may finish between the poll and the drain; every other one was handed back.
      const states = await Promise.all(chunkIds.map(async (id) => (await queue.getJob(id))?.getState()));
      expect(states.filter((state) => state !== 'completed').every((state) => state === 'waiting'), states.join(',')).toBe(true);
      expect(states).toContain('waiting');
      for (const id of chunkIds) expect((await queue.getJob(id))?.failedReason ?? '').toBe('');

      const second = await startWorker(redis, { ...env, GEMBATCH_NODE_ID: 'node-b', GEMBATCH_DATA_DIR: first.dataDir });
      const view = await second.settle(jobId, 150_000);
      expect(view.error).toBeNull();
      expect(view.status).toBe('completed');
      for (const id of chunkIds) {
        const chunk = await queue.getJob(id);
        expect(await chunk?.getState()).toBe('completed');
        expect(chunk?.attemptsMade).toBe(1);
        expect(chunk?.stalledCounter ?? 0).toBe(0);
      }
    },
    240_000,
  );
});
