import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GenerateJobResult } from '@gembatch/contracts';
import { findFamily, parsePrometheusFamilies } from '@gembatch/testing';
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

const JOBS = 300;
/** 12, 16 and 32 GiB plan Q4_0_QAT, Q8_0 and BF16 of the Gemma 4 12B catalog (select-quantization). */
const VRAM = ['12GiB', '16GiB', '32GiB'] as const;

describe('three nodes with 12, 16 and 32 GiB share one queue; one is killed with kill -9', () => {
  let chaos: ChaosStack;
  beforeAll(async () => {
    // Two sequences each: three engines may share as few as two cores, and every node must get work.
    chaos = await startChaosStack({ simulateVram: VRAM, sequences: 2 });
  }, STACK_START_TIMEOUT_MS);
  afterAll(() => chaos?.close());

  test('each node picks its own quantization, all three take jobs, and all 300 complete exactly once', async () => {
    const scrape = async () => parsePrometheusFamilies(await (await fetch(chaos.urls.exporter)).text());
    const info = findFamily(await scrape(), 'gembatch_node_info');
    const quantByNode = new Map(
      (info?.type === 'gauge' || info?.type === 'untyped' ? info.metrics : []).map((s) => [
        s.labels.node as string,
        s.labels.quant as string,
      ]),
    );
    expect([...quantByNode.values()].sort()).toEqual(['BF16', 'Q4_0_QAT', 'Q8_0']);

    const ids = await submitTextJobs(chaos, JOBS, (i) => ({
      text: `Fleet document ${i}: minutes of the harbour board meeting.`,
      task: 'summarize',
      max_tokens: 48,
    }));
    const queue = chaos.producer.queues.generate;
    // Kill a node once every node has completed something, so the victim holds jobs mid-decode.
    const nodesDone = async () => {
      const done = await queue.getCompleted(0, -1);
      return new Set(done.map((job) => GenerateJobResult.parse(job.returnvalue).node));
    };
    await waitUntil(
      async () => (await nodesDone()).size === VRAM.length && (await queue.getActiveCount()) >= 3,
      180_000,
      'not every node completed a job',
    );
    const victim = 'worker-2';
    const killedAt = Date.now();
    await chaos.stack.kill(victim, 'SIGKILL');

    await waitUntil(async () => (await tallyJobs(chaos, ids)).pending === 0, 240_000, 'jobs did not finish');
    const finishedMs = Date.now() - killedAt;
    const tally = await tallyJobs(chaos, ids);
    expect(tally.failedReasons).toEqual([]);
    expect(tally).toMatchObject({ completed: JOBS, failed: 0, missing: 0 });
    const completions = await completionsPerJob(chaos);
    expect(ids.filter((id) => completions.get(id) !== 1)).toEqual([]);

    const perNode = new Map<string, number>();
    for (const job of await queue.getCompleted(0, -1)) {
      const node = GenerateJobResult.parse(job.returnvalue).node;
      perNode.set(node, (perNode.get(node) ?? 0) + 1);
    }
    expect(perNode.size).toBe(3);
    for (const count of perNode.values()) expect(count).toBeGreaterThan(0);
    const spread = [...perNode].map(([node, count]) => `${quantByNode.get(node)} ${count}`).join(', ');
    reportScenario(
      '3 nodes (12/16/32 GiB) + kill -9 one',
      `quants ${[...quantByNode.values()].sort().join('/')}; ${tally.completed}/${JOBS} completed exactly once, ${tally.failed} failed, ${tally.missing} lost; jobs per node: ${spread}; rest finished ${seconds(finishedMs)} after the kill`,
    );
  });
});
