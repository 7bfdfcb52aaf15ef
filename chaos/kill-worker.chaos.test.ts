import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  completionsPerJob,
  seconds,
  startChaosStack,
  submitTextJobs,
  tallyJobs,
  waitUntil,
  type ChaosStack,
  STACK_START_TIMEOUT_MS,
} from './chaos-stack.ts';
import { reportScenario } from './report.ts';

const JOBS = 150;
/** Recovery the README promises: the lock (10 s) plus one stall check (5 s), with slack for a busy machine. */
const RECOVERY_BOUND_MS = 20_000;

describe('kill -9 one of two workers mid-run', () => {
  let chaos: ChaosStack;
  beforeAll(async () => {
    chaos = await startChaosStack({ workers: 2 });
  }, STACK_START_TIMEOUT_MS);
  afterAll(() => chaos?.close());

  test('every job completes exactly once, none fails or is lost, and the dead worker’s jobs run again within 20 s', async () => {
    const ids = await submitTextJobs(chaos, JOBS, (i) => ({
      text: `Chaos document ${i}: the quarterly report of the lighthouse cooperative.`,
      task: 'summarize',
      max_tokens: 96,
    }));
    const queue = chaos.producer.queues.generate;

    // Kill once both workers are busy and some jobs are done, so the victim holds jobs mid-decode.
    await waitUntil(
      async () => (await queue.getJobCountByTypes('completed')) >= 10 && (await queue.getActiveCount()) >= 6,
      120_000,
      'the workers did not get busy',
    );
    const inFlight = await queue.getActive();
    const killedAt = Date.now();
    await chaos.stack.kill('worker', 'SIGKILL');

    // A job of the dead worker is recovered when another worker starts it again (processedOn moves
    // past the kill); the survivor's own jobs simply finish.
    const recoveredAt = new Map<string, number>();
    await waitUntil(
      async () => {
        for (const job of inFlight) {
          const id = job.id as string;
          if (recoveredAt.has(id)) continue;
          const current = await queue.getJob(id);
          if (current && (current.finishedOn !== undefined || (current.processedOn ?? 0) > killedAt))
            recoveredAt.set(id, Date.now());
        }
        return recoveredAt.size === inFlight.length;
      },
      60_000,
      'jobs of the killed worker did not come back',
    );
    const recoveryMs = Math.max(...recoveredAt.values()) - killedAt;

    await waitUntil(async () => (await tallyJobs(chaos, ids)).pending === 0, 150_000, 'jobs did not finish');
    const tally = await tallyJobs(chaos, ids);
    expect(tally.failedReasons).toEqual([]);
    expect(tally).toMatchObject({ completed: JOBS, failed: 0, missing: 0 });
    const completions = await completionsPerJob(chaos);
    expect(ids.filter((id) => completions.get(id) !== 1)).toEqual([]);
    expect(recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND_MS);

    reportScenario(
      'kill -9 worker mid-run',
      `${tally.completed}/${JOBS} completed, ${tally.failed} failed, ${tally.missing} lost, ${inFlight.length} in flight at the kill, recovered in ${seconds(recoveryMs)}`,
    );
  });
});
