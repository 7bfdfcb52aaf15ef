import { describe, expect, vi } from 'vitest';
import { ensureTestModel, makeLongText, redisTest } from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

describe('worker shutdown with chunked jobs', () => {
  redisTest(
    'chunk children decoding at shutdown go back to waiting, their parent keeps waiting for them, and another node finishes the flow',
    async ({ redis }) => {
      const model = await ensureTestModel('tiny');
      const env = {
        GEMBATCH_MODEL: model,
        GEMBATCH_SEQUENCES: '2',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '2048',
        GEMBATCH_CHUNK_OVERLAP_TOKENS: '16',
      };
      const first = await startWorker(redis, { ...env, GEMBATCH_NODE_ID: 'node-a' });
      const engine = first.node.engine;
      if (!engine) throw new Error('engine not loaded');
      // Two chunks: each leaves 2048 - max_tokens for its slice of the input, and the reduce step
      // fits both 300-token partials (re-tokenized random text runs longer than 300 tokens).
      let text = makeLongText(400, 3);
      while ((await engine.countTokens(text)) < 2_200) text += `\n${makeLongText(100, text.length)}`;
      const jobId = await first.submitText(text, 'summarize', { max_tokens: 300 });
      const queue = first.producer.queues.generate;
      // Both chunks in the engine's sequences. Not their progress: it is written at most every
      // 500 ms, and on a fast host a 300-token chunk is done before its first write.
      const chunkIds = await vi.waitFor(
        async () => {
          const chunks = (await queue.getActive()).filter((job) => job.data.chunk !== undefined);
          const inEngine = engine.stats().activeSequences;
          if (chunks.length < 2 || inEngine < 2)
            throw new Error(`${chunks.length} chunks taken, ${inEngine} in the engine`);
          return chunks.map((job) => job.id as string);
        },
        { timeout: 30_000, interval: 10 },
      );
      await first.node.close(50);

      expect(await (await queue.getJob(jobId))?.getState()).toBe('waiting-children');
      // A chunk may finish between the poll and the drain; every other one was handed back.
      const states = await Promise.all(chunkIds.map(async (id) => (await queue.getJob(id))?.getState()));
      expect(
        states.filter((state) => state !== 'completed').every((state) => state === 'waiting'),
        states.join(','),
      ).toBe(true);
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
