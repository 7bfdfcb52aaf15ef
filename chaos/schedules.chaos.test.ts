import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { ensureTestModel, redisTest, tempDir } from '@gembatch/testing';
import type { BatchObject } from '../packages/batches/src/index.ts';
import { startBatchStack, type BatchStack } from '../packages/batches/test/batch-stack.ts';
import type { ScheduleRunView, ScheduleView } from '../packages/schedules/src/index.ts';
import { reportScenario } from './report.ts';

const FINAL_RUN = ['completed', 'failed', 'cancelled', 'expired', 'skipped'];

async function runOf(s: BatchStack, scheduleId: string, runId: string): Promise<ScheduleRunView | undefined> {
  return (await s.call<{ data: ScheduleRunView[] }>('GET', `/v1/schedules/${scheduleId}/runs?limit=100`)).data.find(
    (r) => r.id === runId,
  );
}

describe('schedules under faults', () => {
  redisTest(
    'SIGTERM the whole stack while a schedule run waits on its batch, start it again: the run resumes with the same batch, every file written once, the next run finds nothing new',
    async ({ redis }) => {
      const model = await ensureTestModel('tiny');
      const dir = await tempDir('gembatch-schedule-chaos-');
      const root = join(dir.path, 'root');
      const inbox = join(root, 'inbox');
      await mkdir(inbox, { recursive: true });
      const N = 300;
      for (let i = 0; i < N; i += 1)
        await writeFile(
          join(inbox, `doc-${String(i).padStart(4, '0')}.txt`),
          `Record ${i}: parcel ${i * 7} was signed for at door ${i % 40}.\n`,
        );
      const env = { GEMBATCH_SCHEDULE_ROOT: root };
      const first = await startBatchStack(redis, { model, dir, env });
      let schedule: ScheduleView;
      let run: ScheduleRunView;
      let batchId = '';
      let atStop = 0;
      try {
        schedule = await first.call<ScheduleView>('POST', '/v1/schedules', {
          cron: '0 0 1 1 *',
          source_folder: 'inbox',
          output_folder: 'out',
          task: 'summarize',
          options: { length: 'short' },
          paused: true,
        });
        run = await first.call<ScheduleRunView>('POST', `/v1/schedules/${schedule.id}/run`);
        batchId = await vi.waitFor(
          async () => {
            const current = await runOf(first, schedule.id, run.id);
            if (!current?.batch_id) throw new Error(`run ${current?.status} without a batch yet`);
            return current.batch_id;
          },
          { timeout: 120_000, interval: 100 },
        );
        atStop = (await first.waitFor(batchId, ['in_progress'], 120_000, (b) => b.request_counts.completed >= 50))
          .request_counts.completed;
      } catch (error) {
        await first.stop();
        await dir.cleanup();
        throw error;
      }
      const stoppedAt = Date.now();
      await first.stop();
      const second = await startBatchStack(redis, { model, dir, env });
      try {
        const done = await vi.waitFor(
          async () => {
            const current = await runOf(second, schedule.id, run.id);
            if (!current || !FINAL_RUN.includes(current.status)) throw new Error(`run ${current?.status}`);
            return current;
          },
          { timeout: 240_000, interval: 250 },
        );
        const recoveredInS = (Date.now() - stoppedAt) / 1000;
        expect(done).toMatchObject({
          status: 'completed',
          batch_id: batchId,
          files_new: N,
          request_counts: { total: N, completed: N, failed: 0 },
        });
        const output = join(root, 'out');
        const names = (await readdir(output)).filter((name) => !name.startsWith('.'));
        expect(names.filter((name) => name.endsWith('.txt.json'))).toHaveLength(N);
        expect(names.filter((name) => name.endsWith('.jsonl'))).toEqual([`${batchId}.jsonl`]);
        const lines = (await readFile(join(output, `${batchId}.jsonl`), 'utf8')).split('\n').filter(Boolean);
        expect(lines).toHaveLength(N);
        expect(new Set(lines.map((line) => (JSON.parse(line) as { custom_id: string }).custom_id)).size).toBe(N);
        // One batch for this schedule: the retried run found its batch instead of submitting another.
        const batches = (await second.call<{ data: BatchObject[] }>('GET', '/v1/batches?limit=100')).data.filter(
          (b) => b.metadata?.schedule_id === schedule.id,
        );
        expect(batches.map((b) => b.id)).toEqual([batchId]);
        const next = await second.call<ScheduleRunView>('POST', `/v1/schedules/${schedule.id}/run`);
        const after = await vi.waitFor(
          async () => {
            const current = await runOf(second, schedule.id, next.id);
            if (!current || !FINAL_RUN.includes(current.status)) throw new Error(`run ${current?.status}`);
            return current;
          },
          { timeout: 60_000, interval: 100 },
        );
        expect(after).toMatchObject({ status: 'completed', files_found: N, files_new: 0, batch_id: null });
        expect((await second.call<ScheduleView>('GET', `/v1/schedules/${schedule.id}`)).files_seen).toBe(N);
        reportScenario(
          'SIGTERM stack mid-schedule-run',
          `${N}/${N} results written once by the same batch after the restart (stopped at ${atStop} completed), 0 duplicated, next run 0 new, done ${recoveredInS.toFixed(0)} s after the stop`,
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}\napi log:\n${await second.apiProblems()}`, { cause: error });
      } finally {
        await second.stop();
        await dir.cleanup();
      }
    },
    420_000,
  );
});
