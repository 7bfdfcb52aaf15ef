import { readFile } from 'node:fs/promises';
import { toFile } from 'openai';
import { describe, expect } from 'vitest';
import { ALL_QUEUES } from '@gembatch/contracts';
import { JobProducer } from '@gembatch/queue';
import { closeAfterTest, ensureTestModel, openTestRedis, redisTest } from '@gembatch/testing';
import type { BatchObject, BatchOutputLine } from '../packages/batches/src/index.ts';
import { jsonl, parseJsonl, startBatchStack, type BatchStack } from '../packages/batches/test/batch-stack.ts';
import { reportScenario } from './report.ts';

const textLines = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    custom_id: `${prefix}-${i}`,
    method: 'POST',
    url: '/v1/jobs',
    body: { text: `${prefix} ${i}: ok.`, task: 'summarize', max_tokens: 4 },
  }));

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

async function readOutputs(
  s: BatchStack,
  batch: BatchObject,
): Promise<{ output: BatchOutputLine[]; errors: BatchOutputLine[] }> {
  const read = async (id: string | null) =>
    id ? parseJsonl<BatchOutputLine>(await (await s.openai.files.content(id)).text()) : [];
  return { output: await read(batch.output_file_id), errors: await read(batch.error_file_id) };
}

describe('batches under load and restarts', () => {
  redisTest(
    'a 100,000-request batch is validated and accepted with flat API memory, then cancelled after ≥ 1,000 completed',
    async ({ redis }) => {
      const s = await startBatchStack(redis, { model: await ensureTestModel('tiny') });
      const producer = closeAfterTest(
        new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix }),
      );
      try {
        const pid = s.stack.pid('api') as number;
        const before = await rssBytes(pid);
        let peak = before;
        const sampler = setInterval(() => {
          rssBytes(pid).then(
            (rss) => (peak = Math.max(peak, rss)),
            () => undefined,
          );
        }, 100);
        const N = 100_000;
        const file = await s.openai.files.create({
          file: await toFile(Buffer.from(jsonl(textLines('r', N))), 'big.jsonl'),
          purpose: 'batch',
        });
        const created = await s.call<BatchObject>('POST', '/v1/batches', {
          input_file_id: file.id,
          endpoint: '/v1/jobs',
          completion_window: '24h',
        });
        const started = Date.now();
        const running = await s.waitFor(created.id, ['in_progress', 'failed'], 120_000);
        const validatedInS = (Date.now() - started) / 1000;
        expect(running.status).toBe('in_progress');
        expect(running.request_counts.total).toBe(N);
        await s.waitFor(created.id, ['in_progress'], 180_000, (b) => b.request_counts.completed >= 1_000);
        clearInterval(sampler);
        const growth = peak - before;
        console.log(
          `API RSS ${Math.round(before / 2 ** 20)} MiB before, ${Math.round(peak / 2 ** 20)} MiB peak: +${Math.round(growth / 2 ** 20)} MiB for ${N} requests`,
        );
        expect(growth).toBeLessThan(200 * 2 ** 20);

        await s.call('POST', `/v1/batches/${created.id}/cancel`);
        const cancelled = await s.waitFor(created.id, ['cancelled'], 180_000);
        const { output, errors } = await readOutputs(s, cancelled);
        expect(cancelled.request_counts.total).toBe(N);
        expect(cancelled.request_counts.completed).toBeGreaterThanOrEqual(1_000);
        expect(cancelled.request_counts.completed).toBe(output.length);
        expect(cancelled.request_counts.failed).toBe(errors.length);
        let left = 0;
        for (const queue of ALL_QUEUES)
          left += Object.values(
            await producer.queues[queue].getJobCounts(
              'waiting',
              'active',
              'delayed',
              'prioritized',
              'waiting-children',
            ),
          ).reduce((a, b) => a + b, 0);
        expect(left).toBe(0);
        reportScenario(
          '100k-request batch',
          `validated in ${validatedInS.toFixed(1)} s, API RSS +${Math.round(growth / 2 ** 20)} MiB, cancelled at ${cancelled.request_counts.completed} completed / ${cancelled.request_counts.failed} failed of ${N}, ${left} jobs left waiting or active`,
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

  redisTest(
    'SIGTERM the whole stack in the middle of a 2,000-request batch, start it again on the same data dir: exactly 2,000 output lines, none duplicated',
    async ({ redis }) => {
      const model = await ensureTestModel('tiny');
      const first = await startBatchStack(redis, { model });
      const N = 2_000;
      let batchId = '';
      let atStop = 0;
      try {
        const file = await first.openai.files.create({
          file: await toFile(Buffer.from(jsonl(textLines('r', N))), 'restart.jsonl'),
          purpose: 'batch',
        });
        batchId = (
          await first.call<BatchObject>('POST', '/v1/batches', {
            input_file_id: file.id,
            endpoint: '/v1/jobs',
            completion_window: '24h',
          })
        ).id;
        atStop = (await first.waitFor(batchId, ['in_progress'], 120_000, (b) => b.request_counts.completed >= 300))
          .request_counts.completed;
      } catch (error) {
        await first.stop();
        await first.dir.cleanup();
        throw error;
      }
      const stoppedAt = Date.now();
      await first.stop();
      const second = await startBatchStack(redis, { model, dir: first.dir });
      try {
        const done = await second.waitFor(batchId, ['completed'], 240_000);
        const recoveredInS = (Date.now() - stoppedAt) / 1000;
        const { output, errors } = await readOutputs(second, done);
        expect(errors).toEqual([]);
        expect(output).toHaveLength(N);
        expect(output.map((line) => line.custom_id)).toEqual(textLines('r', N).map((line) => line.custom_id));
        expect(new Set(output.map((line) => line.id)).size).toBe(N);
        expect(done.request_counts).toEqual({ total: N, completed: N, failed: 0 });
        reportScenario(
          'SIGTERM stack mid-batch',
          `${N}/${N} output lines, 0 duplicated, 0 failed, stopped at ${atStop} completed, done ${recoveredInS.toFixed(0)} s after the stop`,
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}\napi log:\n${await second.apiProblems()}`, { cause: error });
      } finally {
        await second.stop();
        await second.dir.cleanup();
      }
    },
    420_000,
  );
});
