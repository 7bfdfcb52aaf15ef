import { toFile } from 'openai';
import { describe, expect } from 'vitest';
import { ensureTestModel, redisTest } from '@gembatch/testing';
import type { BatchOutputLine } from '../src/index.ts';
import { jsonl, parseJsonl, startBatchStack } from './batch-stack.ts';

describe('batches of /v1/jobs requests on a real stack', () => {
  redisTest(
    'a 1,000-request batch: exactly 1,000 output lines in input order with matching custom_ids, counts that add up; identical requests run once',
    async ({ redis }) => {
      const s = await startBatchStack(redis, { model: await ensureTestModel('tiny') });
      try {
        const N = Number(process.env.GB_TEST_N ?? 1_000);
        const lines = Array.from({ length: N }, (_, i) => ({
          custom_id: `doc-${i}`,
          method: 'POST',
          url: '/v1/jobs',
          body: { text: `Note ${i % 990}: the delivery arrived on day ${i % 990}.`, task: 'summarize', max_tokens: 4 },
        }));
        const file = await s.openai.files.create({
          file: await toFile(Buffer.from(jsonl(lines)), 'jobs.jsonl'),
          purpose: 'batch',
        });
        const created = await s.openai.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/jobs' as '/v1/chat/completions',
          completion_window: '24h',
        });
        expect(created.status).toBe('validating');
        const done = await s.waitFor(created.id, ['completed', 'failed'], 240_000);
        console.log(
          `batch of ${N}: ${(done.completed_at ?? 0) - (done.in_progress_at ?? 0)} s from in_progress to completed`,
        );
        expect(done.status).toBe('completed');
        expect(done.request_counts).toEqual({ total: N, completed: N, failed: 0 });
        expect(done.error_file_id).toBeNull();
        const output = parseJsonl<BatchOutputLine>(
          await (await s.openai.files.content(done.output_file_id as string)).text(),
        );
        expect(output).toHaveLength(N);
        expect(output.map((line) => line.custom_id)).toEqual(lines.map((line) => line.custom_id));
        for (const line of output) {
          expect(line.error).toBeNull();
          expect(line.response?.status_code).toBe(200);
        }
        // Lines i and i + 990 are the same request: one job served both.
        expect(output[995]?.response?.request_id).toBe(output[5]?.response?.request_id);
        expect(new Set(output.map((line) => line.response?.request_id)).size).toBe(990);
        const body = output[0]?.response?.body as { task: string; usage: { generated_tokens: number } };
        expect(body.task).toBe('summarize');
        expect(body.usage.generated_tokens).toBeGreaterThan(0);
        for (const stamp of ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at', 'expires_at'] as const)
          expect(Number.isInteger(done[stamp])).toBe(true);
      } catch (error) {
        throw new Error(`${(error as Error).message}\napi log:\n${await s.apiProblems()}`);
      } finally {
        await s.stop();
        await s.dir.cleanup();
      }
    },
    300_000,
  );
});
