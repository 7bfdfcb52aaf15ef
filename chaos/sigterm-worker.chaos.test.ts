import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeLongText } from '@gembatch/testing';
import {
  seconds,
  startChaosStack,
  submitTextJobs,
  tallyJobs,
  waitUntil,
  type ChaosStack,
  STACK_START_TIMEOUT_MS,
} from './chaos-stack.ts';
import { reportScenario } from './report.ts';

/** The measurement: 16 long generations, 3 s grace; 4 of them used to fail GB_ERR_CANCELLED. */
const JOBS = 16;
const GRACE_SECONDS = 3;
/**
 * Far longer than the grace period on the tiny model, so the drain has to hand jobs back. 1,200 tokens
 * took 1.9-2.3 s on a faster host: the jobs running at the signal could all end within the grace (one
 * CI run saw 0 handed back). 3,600 tokens in a 4,096-token context take several times the grace.
 */
const MAX_TOKENS = 3_600;
const CONTEXT_PER_SEQUENCE = 4_096;
/** Long inputs that run as chunk flows; their partials must fit the context of the reduce step. */
const FLOWS = 2;
const FLOW_MAX_TOKENS = 300;

describe('SIGTERM a worker during long generations with a short grace', () => {
  let chaos: ChaosStack;
  beforeAll(async () => {
    chaos = await startChaosStack({
      workers: 2,
      env: {
        GEMBATCH_SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
        GEMBATCH_CONTEXT_PER_SEQUENCE: String(CONTEXT_PER_SEQUENCE),
      },
    });
  }, STACK_START_TIMEOUT_MS);
  afterAll(() => chaos?.close());

  test('the drained worker hands every unfinished job back with its attempt intact; the other worker completes them all, none failed', async () => {
    // Two long inputs first: each splits into chunk children (a flow) whose parent waits through the drain.
    const flows = await submitTextJobs(chaos, FLOWS, (i) => ({
      text: makeLongText(2_500, i + 1),
      task: 'summarize',
      max_tokens: FLOW_MAX_TOKENS,
    }));
    const ids = [
      ...flows,
      ...(await submitTextJobs(chaos, JOBS, (i) => ({
        text: `Deploy-time document ${i}: minutes of the orchard committee meeting.`,
        task: 'summarize',
        max_tokens: MAX_TOKENS,
      }))),
    ];
    const queue = chaos.producer.queues.generate;
    // Both workers decoding (4 sequences each) before the drain starts.
    await waitUntil(
      async () =>
        (await queue.getActive()).filter((job) => typeof job.progress === 'number' && job.progress > 0).length >= 8,
      120_000,
      'the workers did not get busy',
    );

    const signalledAt = Date.now();
    const exitCode = await chaos.stack.kill('worker', 'SIGTERM');
    const drainMs = Date.now() - signalledAt;
    expect(exitCode).toBe(0);
    const handedBack = (await chaos.logLines('worker')).filter((line) =>
      line.includes('"msg":"job handed back"'),
    ).length;
    expect(handedBack).toBeGreaterThan(0);

    await waitUntil(async () => (await tallyJobs(chaos, ids)).pending === 0, 170_000, 'jobs did not finish');
    const tally = await tallyJobs(chaos, ids);
    expect(tally.failedReasons).toEqual([]);
    expect(tally).toMatchObject({ completed: JOBS + FLOWS, failed: 0, missing: 0 });
    // A hand-back uses up no attempt: every job completed on its first.
    const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
    expect(jobs.map((job) => job?.attemptsMade)).toEqual(ids.map(() => 1));
    const chunks = jobs.slice(0, FLOWS).map((job) => (job?.returnvalue as { chunks: number }).chunks);
    for (const count of chunks) expect(count).toBeGreaterThanOrEqual(2);

    reportScenario(
      'SIGTERM worker mid-generation',
      `${tally.completed}/${JOBS + FLOWS} completed (${FLOWS} of them split into ${chunks.join(' and ')} chunks), ${tally.failed} failed, ${handedBack} handed back after a ${GRACE_SECONDS} s grace, worker exited 0 in ${seconds(drainMs)}`,
    );
  });
});
