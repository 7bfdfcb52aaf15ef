import type { JobView } from '@gembatch/contracts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  completionsPerJob,
  startChaosStack,
  tallyJobs,
  waitUntil,
  type ChaosStack,
  STACK_START_TIMEOUT_MS,
} from './chaos-stack.ts';
import { reportScenario } from './report.ts';

const BACKLOG = 150;
const NEWCOMER = 5;
/** Why 8: the newcomer waits behind at most one window of the flood, which is small against it. */
const WINDOW = 8;
const KEY_A = 'chaos-key-tenant-a-00000000';
const KEY_B = 'chaos-key-tenant-b-00000000';

describe('one tenant floods the queues, another submits after it', () => {
  let chaos: ChaosStack;
  beforeAll(async () => {
    chaos = await startChaosStack({
      env: { GEMBATCH_BATCH_WINDOW: String(WINDOW), GEMBATCH_API_KEYS: `${KEY_A}:tenant-a,${KEY_B}:tenant-b` },
    });
  }, STACK_START_TIMEOUT_MS);
  afterAll(() => chaos?.close());

  test("the newcomer's jobs wait behind fewer than a quarter of the flood; every job of both completes exactly once", async () => {
    const submit = async (key: string, count: number, label: string) => {
      const ids: string[] = [];
      for (let start = 0; start < count; start += 10) {
        const views = await Promise.all(
          Array.from({ length: Math.min(10, count - start) }, (_, i) =>
            chaos.post<JobView>(
              '/v1/jobs',
              {
                text: `${label} document ${start + i}: the lighthouse keeper's log.`,
                task: 'summarize',
                max_tokens: 16,
              },
              { authorization: `Bearer ${key}` },
            ),
          ),
        );
        ids.push(...views.map((view) => view.id));
      }
      return ids;
    };
    const flood = await submit(KEY_A, BACKLOG, 'Flood');
    const floodDoneBefore = (await tallyJobs(chaos, flood)).completed;
    const newcomer = await submit(KEY_B, NEWCOMER, 'Newcomer');
    await waitUntil(
      async () => (await tallyJobs(chaos, newcomer)).completed === NEWCOMER,
      60_000,
      "the newcomer's jobs did not complete",
    );
    const floodDone = (await tallyJobs(chaos, flood)).completed;

    // A job waiting for its slot is in no queue yet (`missing` in the tally): done means every one completed or failed.
    await waitUntil(
      async () => {
        const { completed, failed } = await tallyJobs(chaos, flood);
        return completed + failed === BACKLOG;
      },
      180_000,
      'the flood did not finish',
    );
    const tally = await tallyJobs(chaos, [...flood, ...newcomer]);
    expect(tally.failedReasons).toEqual([]);
    expect(tally).toMatchObject({ completed: BACKLOG + NEWCOMER, failed: 0, missing: 0, pending: 0 });
    const completions = await completionsPerJob(chaos);
    expect([...flood, ...newcomer].filter((id) => completions.get(id) !== 1)).toEqual([]);
    // What the newcomer waited behind: the flood's jobs that finished after it came (FIFO: all the rest).
    expect(floodDoneBefore).toBeLessThan(BACKLOG / 2);
    expect(floodDone - floodDoneBefore).toBeLessThan(BACKLOG / 4);

    reportScenario(
      'fair share between tenants',
      `tenant B's ${NEWCOMER} jobs completed while tenant A's ${BACKLOG} earlier ones had ${floodDone} done, ${floodDone - floodDoneBefore} of them after B submitted (window ${WINDOW}); ${tally.completed}/${BACKLOG + NEWCOMER} completed exactly once, ${tally.failed} failed, ${tally.missing} lost`,
    );
  });
});
