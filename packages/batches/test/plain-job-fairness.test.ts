import { describe, expect, vi } from 'vitest';
import type { JobView } from '@gembatch/contracts';
import { ensureTestModel, redisTest } from '@gembatch/testing';
import { startBatchStack } from './batch-stack.ts';

/** Why 200: many times the window, so a FIFO queue would put B's job behind all of them. */
const BACKLOG = 200;
/** Why 4: a small window makes the bound on what B waits behind (one window) small against the backlog. */
const WINDOW = 4;
const KEY_A = 'key-for-tenant-a-0000000000';
const KEY_B = 'key-for-tenant-b-0000000000';
const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const job = (text: string) => ({ text, task: 'summarize', max_tokens: 4 });

describe('fair share of plain jobs between tenants', () => {
  redisTest(
    "tenant B's one job, submitted after tenant A's 200, waits behind fewer than a quarter of them; every job of A completes",
    async ({ redis }) => {
      const s = await startBatchStack(redis, {
        model: await ensureTestModel('tiny'),
        sequences: 2,
        env: { GEMBATCH_BATCH_WINDOW: String(WINDOW), GEMBATCH_API_KEYS: `${KEY_A}:tenant-a,${KEY_B}:tenant-b` },
      });
      try {
        const backlog: string[] = [];
        // In parallel groups, so the backlog is in place well before it could drain.
        for (let i = 0; i < BACKLOG; i += 20) {
          const views = await Promise.all(
            Array.from({ length: Math.min(20, BACKLOG - i) }, (_, j) =>
              s.call<JobView>('POST', '/v1/jobs', job(`tenant a note ${i + j}: all systems nominal.`), auth(KEY_A)),
            ),
          );
          backlog.push(...views.map((view) => view.id));
        }
        const completedOfA = async () =>
          (
            await Promise.all(backlog.map((id) => s.call<JobView>('GET', `/v1/jobs/${id}`, undefined, auth(KEY_A))))
          ).filter((view) => view.status === 'completed').length;
        const beforeB = await completedOfA();
        const submitted = await s.call<JobView>('POST', '/v1/jobs', job('tenant b note: one line.'), auth(KEY_B));
        expect(submitted.status).toBe('queued');
        await vi.waitFor(
          async () => {
            const view = await s.call<JobView>('GET', `/v1/jobs/${submitted.id}`, undefined, auth(KEY_B));
            if (view.status !== 'completed') throw new Error(`B's job is ${view.status}`);
          },
          { timeout: 120_000, interval: 50 },
        );
        const doneA = await completedOfA();
        console.log(
          `tenant B's job completed while tenant A had ${doneA}/${BACKLOG} done (${beforeB} when B submitted; window ${WINDOW})`,
        );
        // What B waited behind: A's jobs that finished between B's submission and B's completion (a FIFO queue: all the rest).
        expect(beforeB, 'A had most of its backlog left when B submitted').toBeLessThan(BACKLOG / 2);
        expect(doneA - beforeB).toBeLessThan(BACKLOG / 4);
        // Nothing of A is lost or failed by waiting its turn.
        await vi.waitFor(
          async () => {
            const views = await Promise.all(
              backlog.map((id) => s.call<JobView>('GET', `/v1/jobs/${id}`, undefined, auth(KEY_A))),
            );
            const left = views.filter((view) => view.status !== 'completed');
            if (left.length > 0)
              throw new Error(
                `${left.length} of A's jobs not completed (${[...new Set(left.map((view) => view.status))].join(', ')})`,
              );
          },
          { timeout: 240_000, interval: 500 },
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}\napi log:\n${await s.apiProblems()}`, { cause: error });
      } finally {
        await s.stop();
        await s.dir.cleanup();
      }
    },
    420_000,
  );
});
