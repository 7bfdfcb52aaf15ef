import { describe, expect, vi } from 'vitest';
import { ensureTestModel, makeLongText, redisTest } from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

/**
 * Tokens each job asks for: far more than the grace period lets the tiny model decode (about 1000
 * tok/s per sequence on an idle machine, so 500 could finish between "decoding" and the drain).
 */
const LONG_GENERATION_TOKENS = 2000;
/** Context per sequence (the tiny model's whole training context): room for the short prompt plus `LONG_GENERATION_TOKENS`. */
const CONTEXT = '4096';

describe('worker shutdown', () => {
  redisTest(
    'past the grace period active jobs go back to waiting with their attempt count intact, and another node completes them',
    async ({ redis }) => {
      const model = await ensureTestModel('tiny');
      const first = await startWorker(redis, {
        GEMBATCH_MODEL: model,
        GEMBATCH_SEQUENCES: '4',
        GEMBATCH_CONTEXT_PER_SEQUENCE: CONTEXT,
        GEMBATCH_NODE_ID: 'node-a',
      });
      const queue = first.producer.queues.generate;
      // ignore_eos is not reachable through the API; the tiny model's random weights rarely emit EOS,
      // and the assertion below only needs the jobs to be active when the grace period ends.
      const ids = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          first.submitText(`Shutdown document ${i}. ${makeLongText(2, i)}`, 'summarize', {
            max_tokens: LONG_GENERATION_TOKENS,
          }),
        ),
      );

      // All four in the engine's sequences before the drain starts. Not their progress: it is
      // written at most every 500 ms, and a fast host could end a job before all four had one.
      const engine = first.node.engine;
      if (!engine) throw new Error('engine not loaded');
      await vi.waitFor(
        () => {
          const inEngine = engine.stats().activeSequences;
          if (inEngine < ids.length) throw new Error(`${inEngine}/${ids.length} in the engine`);
        },
        { timeout: 30_000, interval: 10 },
      );
      await first.node.close(100);

      // A random-weight model may still emit EOS early, so a job can finish on its own before the
      // drain; every job that did not is handed back, and none fails.
      const handedBack: string[] = [];
      for (const id of ids) {
        const job = await queue.getJob(id);
        const state = await job?.getState();
        expect(['waiting', 'completed'], `job ${id} after the drain: ${state}`).toContain(state);
        if (state !== 'waiting') continue;
        handedBack.push(id);
        // Handed back, not failed: no attempt was used up, and no failure reason was written.
        expect(job?.attemptsMade).toBe(0);
        expect(job?.failedReason ?? '').toBe('');
      }
      expect(handedBack.length).toBeGreaterThan(0);

      const second = await startWorker(redis, {
        GEMBATCH_MODEL: model,
        GEMBATCH_SEQUENCES: '4',
        GEMBATCH_CONTEXT_PER_SEQUENCE: CONTEXT,
        GEMBATCH_NODE_ID: 'node-b',
        GEMBATCH_DATA_DIR: first.dataDir,
      });
      const views = await Promise.all(ids.map((id) => second.settle(id, 120_000)));
      for (const view of views) {
        expect(view.error).toBeNull();
        expect(view.status).toBe('completed');
      }
      for (const id of handedBack) expect((await queue.getJob(id))?.attemptsMade).toBe(1);
    },
    180_000,
  );
});
