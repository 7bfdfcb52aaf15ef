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

const JOBS = 100;
/** Long enough for every client to fail reconnect attempts (they back off up to 2 s); shorter than a job lock. */
const DOWN_MS = 3_000;

describe('kill -9 Redis mid-run, restart it on its AOF', () => {
  let chaos: ChaosStack;
  beforeAll(async () => {
    chaos = await startChaosStack({ workers: 1 });
  }, STACK_START_TIMEOUT_MS);
  afterAll(() => chaos?.close());

  test('every job submitted before the crash completes after Redis comes back from its append-only file; none is lost or failed', async () => {
    const ids = await submitTextJobs(chaos, JOBS, (i) => ({
      text: `Ledger entry ${i}: the harbour master logged the arrival of a cargo ship.`,
      task: 'summarize',
      max_tokens: 96,
    }));
    const queue = chaos.producer.queues.generate;
    await waitUntil(
      async () => (await queue.getJobCountByTypes('completed')) >= 10 && (await queue.getActiveCount()) >= 2,
      120_000,
      'the worker did not get busy',
    );
    const completedBefore = await queue.getJobCountByTypes('completed');

    const killedAt = Date.now();
    // SIGKILL, DOWN_MS without a server, then redis-server again on the same port and data dir.
    await chaos.redis.restart({ hard: true, downMs: DOWN_MS });
    const restartedAt = Date.now();
    await waitUntil(
      async () => (await queue.getJobCountByTypes('completed')) > completedBefore,
      60_000,
      'no job completed after the restart',
    );
    const resumedMs = Date.now() - restartedAt;

    await waitUntil(async () => (await tallyJobs(chaos, ids)).pending === 0, 150_000, 'jobs did not finish');
    const tally = await tallyJobs(chaos, ids);
    expect(tally.failedReasons).toEqual([]);
    expect(tally).toMatchObject({ completed: JOBS, failed: 0, missing: 0 });
    // Every connection rode the outage out with its listener: no ioredis stack dumps in any service's output.
    let outageLines = 0;
    for (const service of ['api', 'worker', 'exporter']) {
      const lines = await chaos.logLines(service);
      expect(
        lines.filter((line) => line.includes('Unhandled error event')),
        service,
      ).toEqual([]);
      const outage = lines
        .filter((line) => /connection lost|connection restored/.test(line))
        .map((line) => JSON.parse(line) as { msg: string; connection?: string; queue?: string });
      outageLines += outage.length;
      // One line when a connection drops and one when it is back, however many reconnect attempts it took.
      const perConnection = new Map<string, number>();
      for (const line of outage)
        perConnection.set(
          `${line.msg} ${line.connection ?? line.queue}`,
          (perConnection.get(`${line.msg} ${line.connection ?? line.queue}`) ?? 0) + 1,
        );
      expect(
        [...perConnection].filter(([, count]) => count > 1),
        service,
      ).toEqual([]);
    }
    const completions = await completionsPerJob(chaos);
    const twice = ids.filter((id) => (completions.get(id) ?? 0) > 1).length;

    reportScenario(
      'kill -9 Redis mid-run, restart on AOF',
      `${tally.completed}/${JOBS} completed, ${tally.failed} failed, ${tally.missing} lost, ${twice} completed twice, Redis down ${seconds(restartedAt - killedAt)}, jobs completing again ${seconds(resumedMs)} after the restart, ${outageLines} connection log lines`,
    );
  });
});
