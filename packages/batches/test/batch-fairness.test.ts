import { toFile } from 'openai';
import { describe, expect } from 'vitest';
import { ALL_QUEUES } from '@gembatch/contracts';
import { JobProducer } from '@gembatch/queue';
import { closeAfterTest, ensureTestModel, openTestRedis, redisTest } from '@gembatch/testing';
import type { BatchObject, BatchOutputLine } from '../src/index.ts';
import { jsonl, parseJsonl, startBatchStack, type BatchStack } from './batch-stack.ts';

const textLines = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    custom_id: `${prefix}-${i}`,
    method: 'POST',
    url: '/v1/jobs',
    body: { text: `${prefix} note ${i}: all systems nominal.`, task: 'summarize', max_tokens: 4 },
  }));

async function createBatch(s: BatchStack, lines: readonly unknown[], name: string): Promise<BatchObject> {
  const file = await s.openai.files.create({
    file: await toFile(Buffer.from(jsonl(lines)), `${name}.jsonl`),
    purpose: 'batch',
  });
  return s.call<BatchObject>('POST', '/v1/batches', {
    input_file_id: file.id,
    endpoint: '/v1/jobs',
    completion_window: '24h',
  });
}

describe('fair share and cancellation', () => {
  redisTest(
    'a 10-request batch submitted after a 5,000-request one completes before the big one is 25 % done; cancelling the big one leaves consistent counts and no job waiting or active',
    async ({ redis }) => {
      const s = await startBatchStack(redis, { model: await ensureTestModel('tiny') });
      const producer = closeAfterTest(
        new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix }),
      );
      try {
        const big = await createBatch(s, textLines('big', 5_000), 'big');
        await s.waitFor(big.id, ['in_progress'], 60_000, (b) => b.request_counts.completed >= 50);
        const small = await createBatch(s, textLines('small', 10), 'small');
        const smallDone = await s.waitFor(small.id, ['completed'], 120_000);
        const bigAtThatTime = await s.call<BatchObject>('GET', `/v1/batches/${big.id}`);
        console.log(`small batch completed while the big one had ${bigAtThatTime.request_counts.completed}/5000 done`);
        expect(smallDone.request_counts).toEqual({ total: 10, completed: 10, failed: 0 });
        expect(bigAtThatTime.request_counts.completed).toBeLessThan(1_250);

        const cancelling = await s.call<BatchObject>('POST', `/v1/batches/${big.id}/cancel`);
        expect(['cancelling', 'cancelled']).toContain(cancelling.status);
        const cancelled = await s.waitFor(big.id, ['cancelled'], 120_000);
        expect(Number.isInteger(cancelled.cancelling_at)).toBe(true);
        expect(Number.isInteger(cancelled.cancelled_at)).toBe(true);
        const output = cancelled.output_file_id
          ? parseJsonl<BatchOutputLine>(await (await s.openai.files.content(cancelled.output_file_id)).text())
          : [];
        const errors = cancelled.error_file_id
          ? parseJsonl<BatchOutputLine>(await (await s.openai.files.content(cancelled.error_file_id)).text())
          : [];
        expect(cancelled.request_counts.total).toBe(5_000);
        expect(cancelled.request_counts.completed).toBe(output.length);
        expect(cancelled.request_counts.failed).toBe(errors.length);
        expect(output.length + errors.length).toBeLessThan(5_000);
        for (const line of errors) expect(line.error?.code).toBe('GB_ERR_CANCELLED');
        const indexes = output.map((line) => Number(line.custom_id.slice('big-'.length)));
        expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
        for (const queue of ALL_QUEUES) {
          const counts = await producer.queues[queue].getJobCounts(
            'waiting',
            'active',
            'delayed',
            'prioritized',
            'waiting-children',
          );
          expect({ queue, left: Object.values(counts).reduce((a, b) => a + b, 0) }).toEqual({ queue, left: 0 });
        }
        await expect(s.call('POST', `/v1/batches/${small.id}/cancel`)).rejects.toThrow(/409/);
      } catch (error) {
        throw new Error(`${(error as Error).message}\napi log:\n${await s.apiProblems()}`, { cause: error });
      } finally {
        await s.stop();
        await s.dir.cleanup();
      }
    },
    300_000,
  );
});
