import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { EmbeddedStack } from '@gembatch/cli';
import {
  closeAfterTest,
  ensureTestModel,
  findFreePort,
  redisTest,
  startWebhookReceiver,
  tempDir,
} from '@gembatch/testing';
import type { ScheduleRunView, ScheduleView } from '../src/index.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const FINAL_RUN = ['completed', 'failed', 'cancelled', 'expired', 'skipped'];

/** Five short notes; each becomes one summarize request. */
const NOTES = [
  'The boiler in unit 4 was serviced on Monday.',
  'Rent for March arrived two days late.',
  'The tenant asked for a second parking space.',
  'A leak under the kitchen sink was repaired.',
  'The lease renewal was signed for two years.',
];

describe('schedules on a real stack (API with feeder and schedule runner, worker on a tiny GGUF)', () => {
  redisTest(
    'runs pick up only unseen contents (renamed and re-copied files skipped, a 6th file picked up), outputs appear atomically, runs never overlap, every webhook verifies',
    async ({ redis }) => {
      const dir = await tempDir('gembatch-schedules-');
      const root = join(dir.path, 'root');
      const source = join(root, 'inbox');
      await mkdir(source, { recursive: true });
      for (const [index, note] of NOTES.entries()) await writeFile(join(source, `note-${index + 1}.txt`), `${note}\n`);
      await mkdir(join(root, 'empty'));
      const receiver = closeAfterTest(await startWebhookReceiver({ secret: SECRET }));
      const apiPort = await findFreePort();
      const stack = new EmbeddedStack({
        redisUrl: redis.url,
        apiPort,
        exporterPort: await findFreePort(),
        dataDir: join(dir.path, 'data'),
        model: await ensureTestModel('tiny'),
        sequences: 4,
        env: {
          GEMBATCH_REDIS_PREFIX: redis.prefix,
          GEMBATCH_THREADS: '1',
          GEMBATCH_METRICS_PORT: '0',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
          GEMBATCH_SCHEDULE_ROOT: root,
          GEMBATCH_WEBHOOK_ALLOWED_URLS: receiver.url,
          GEMBATCH_WEBHOOK_SECRET: SECRET,
        },
        status: { write: () => true } as unknown as NodeJS.WritableStream,
        readyTimeoutMs: 120_000,
      });
      const api = `http://127.0.0.1:${apiPort}`;
      const call = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
        const response = await fetch(`${api}${path}`, {
          method,
          ...(body !== undefined
            ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
            : {}),
        });
        const text = await response.text();
        return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
      };
      const runOf = async (scheduleId: string, runId: string) =>
        (await call<{ data: ScheduleRunView[] }>('GET', `/v1/schedules/${scheduleId}/runs?limit=100`)).body.data.find(
          (r) => r.id === runId,
        );
      const waitRun = (scheduleId: string, runId: string) =>
        vi.waitFor(
          async () => {
            const run = await runOf(scheduleId, runId);
            if (!run || !FINAL_RUN.includes(run.status)) throw new Error(`run ${runId} is ${run?.status}`);
            return run;
          },
          { timeout: 120_000, interval: 100 },
        );
      try {
        await stack.start();

        // Refusals at submission: a folder outside the root, a webhook off the allowlist, a bad cron.
        const base = {
          cron: '* * * * *',
          source_folder: 'inbox',
          output_folder: 'out',
          task: 'summarize',
          options: { length: 'short' },
        };
        const outside = await call<{ error: { code: string } }>('POST', '/v1/schedules', {
          ...base,
          source_folder: dir.path,
        });
        expect(outside.status, JSON.stringify(outside.body)).toBe(400);
        expect(outside.body.error.code).toBe('GB_ERR_FOLDER_NOT_ALLOWED');
        expect(
          (await call<{ error: { code: string } }>('POST', '/v1/schedules', { ...base, source_folder: '../../' })).body
            .error.code,
        ).toBe('GB_ERR_FOLDER_NOT_ALLOWED');
        expect(
          (
            await call<{ error: { code: string } }>('POST', '/v1/schedules', {
              ...base,
              webhook: { url: 'http://169.254.169.254/latest' },
            })
          ).body.error.code,
        ).toBe('GB_ERR_WEBHOOK_NOT_ALLOWED');
        expect(
          (await call<{ error: { code: string } }>('POST', '/v1/schedules', { ...base, cron: '61 * * * *' })).status,
        ).toBe(400);

        const created = await call<ScheduleView>('POST', '/v1/schedules', { ...base, webhook: { url: receiver.url } });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const schedule = created.body;
        expect(schedule).toMatchObject({ status: 'active', timezone: 'UTC', endpoint: '/v1/jobs', files_seen: 0 });
        // Every-minute cron on a BullMQ job scheduler: the next tick is within a minute.
        expect(schedule.next_run_at).toBeGreaterThan(Date.now() / 1000 - 1);
        expect(schedule.next_run_at).toBeLessThanOrEqual(Date.now() / 1000 + 61);
        // Paused: no cron tick can interfere with the runs this test asks for.
        expect((await call<ScheduleView>('POST', `/v1/schedules/${schedule.id}/pause`)).body).toMatchObject({
          status: 'paused',
          next_run_at: null,
        });

        // While the first run goes, look at the output folder all the time: every visible file must be whole.
        const output = join(root, 'out');
        const partial: string[] = [];
        let watching = true;
        const watcher = (async () => {
          while (watching) {
            for (const name of await readdir(output, { recursive: true }).catch(() => [] as string[])) {
              if (name.split('/').some((part) => part.startsWith('.'))) continue;
              const text = await readFile(join(output, name), 'utf8').catch(() => undefined);
              if (text === undefined) continue;
              const lines = name.endsWith('.jsonl') ? text.split('\n').filter(Boolean) : [text];
              for (const line of lines) {
                try {
                  JSON.parse(line);
                } catch {
                  partial.push(name);
                }
              }
              if (name.endsWith('.jsonl') && !text.endsWith('\n')) partial.push(name);
            }
            await new Promise((r) => setImmediate(r));
          }
        })();

        // Two runs asked for at once: one runs, the other is skipped (never two at a time).
        const [first, second] = await Promise.all([
          call<ScheduleRunView>('POST', `/v1/schedules/${schedule.id}/run`),
          call<ScheduleRunView>('POST', `/v1/schedules/${schedule.id}/run`),
        ]);
        expect(first.status).toBe(202);
        const runs = await Promise.all([waitRun(schedule.id, first.body.id), waitRun(schedule.id, second.body.id)]);
        watching = false;
        await watcher;
        const ran = runs.find((r) => r.batch_id !== null);
        const skipped = runs.find((r) => r.batch_id === null);
        expect(skipped?.status).toBe('skipped');
        expect(ran).toMatchObject({
          status: 'completed',
          files_found: 5,
          files_new: 5,
          request_counts: { total: 5, completed: 5, failed: 0 },
        });
        expect(partial).toEqual([]);

        const batchId = ran?.batch_id as string;
        const written = (await readdir(output)).sort();
        expect(written).toEqual([
          `${batchId}.jsonl`,
          'note-1.txt.json',
          'note-2.txt.json',
          'note-3.txt.json',
          'note-4.txt.json',
          'note-5.txt.json',
        ]);
        const batchLines = (await readFile(join(output, `${batchId}.jsonl`), 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map(
            (l) =>
              JSON.parse(l) as {
                custom_id: string;
                response: { status_code: number; body: { output: { text: string } } };
              },
          );
        expect(batchLines.map((l) => l.custom_id)).toEqual([
          'note-1.txt',
          'note-2.txt',
          'note-3.txt',
          'note-4.txt',
          'note-5.txt',
        ]);
        const one = JSON.parse(await readFile(join(output, 'note-1.txt.json'), 'utf8')) as {
          custom_id: string;
          response: { status_code: number; body: { output: { text: string } } };
        };
        expect(one.custom_id).toBe('note-1.txt');
        expect(one.response.status_code).toBe(200);
        expect(one.response.body.output.text.length).toBeGreaterThan(0);

        // The batch carries its webhook delivery; the receiver verified the signature.
        const [event] = await receiver.waitFor(1);
        expect(event).toMatchObject({
          verified: true,
          answered: 200,
          body: {
            type: 'batch.completed',
            object: 'event',
            data: { id: batchId, status: 'completed', request_counts: { total: 5, completed: 5, failed: 0 } },
          },
        });
        const batch = await vi.waitFor(
          async () => {
            const b = (
              await call<{ webhook: { status: string } | null; metadata: Record<string, string> }>(
                'GET',
                `/v1/batches/${batchId}`,
              )
            ).body;
            if (b.webhook?.status !== 'delivered') throw new Error(`webhook ${b.webhook?.status}`);
            return b;
          },
          { timeout: 15_000, interval: 100 },
        );
        expect(batch.webhook).toMatchObject({
          url: receiver.url,
          event: 'batch.completed',
          status: 'delivered',
          attempts: [{ attempt: 1, status_code: 200 }],
        });
        expect(batch.metadata).toMatchObject({ schedule_id: schedule.id, run_id: ran?.id });

        // Next run: nothing new, even with a file renamed and another re-copied under a new name.
        await copyFile(join(source, 'note-2.txt'), join(source, 'copy-of-note-2.txt'));
        await copyFile(join(source, 'note-3.txt'), join(source, 'renamed.txt'));
        const again = await waitRun(
          schedule.id,
          (await call<ScheduleRunView>('POST', `/v1/schedules/${schedule.id}/run`)).body.id,
        );
        expect(again).toMatchObject({ status: 'completed', files_found: 7, files_new: 0, batch_id: null });

        // A 6th file added later is picked up, alone.
        await writeFile(join(source, 'note-6.txt'), 'The smoke detector in the hallway was replaced.\n');
        const sixth = await waitRun(
          schedule.id,
          (await call<ScheduleRunView>('POST', `/v1/schedules/${schedule.id}/run`)).body.id,
        );
        expect(sixth).toMatchObject({
          status: 'completed',
          files_found: 8,
          files_new: 1,
          request_counts: { total: 1, completed: 1, failed: 0 },
        });
        expect(JSON.parse(await readFile(join(output, 'note-6.txt.json'), 'utf8'))).toMatchObject({
          custom_id: 'note-6.txt',
          response: { status_code: 200 },
        });
        const events = await receiver.waitFor(2);
        expect(events.every((e) => e.verified)).toBe(true);
        expect(events[1]?.body).toMatchObject({ type: 'batch.completed', data: { id: sixth.batch_id } });

        const view = (await call<ScheduleView>('GET', `/v1/schedules/${schedule.id}`)).body;
        expect(view).toMatchObject({ files_seen: 6, status: 'paused', last_run: { id: sixth.id } });
        const listed = (await call<{ data: ScheduleRunView[] }>('GET', `/v1/schedules/${schedule.id}/runs`)).body.data;
        expect(listed.slice(0, 2).map((r) => r.id)).toEqual([sixth.id, again.id]);
        expect(new Set(listed.map((r) => r.id))).toEqual(new Set([first.body.id, second.body.id, again.id, sixth.id]));
        expect(
          listed
            .filter((r) => r.batch_id !== null)
            .map((r) => r.batch_id)
            .sort(),
        ).toEqual([batchId, sixth.batch_id].sort());

        // endpoint + body template: chat completions on each new file ({{file_id}} becomes a file part).
        const chat = (
          await call<ScheduleView>('POST', '/v1/schedules', {
            cron: '0 4 * * *',
            source_folder: 'inbox',
            output_folder: 'chat-out',
            endpoint: '/v1/chat/completions',
            body: {
              model: 'gembatch-tiny',
              max_tokens: 8,
              messages: [
                {
                  role: 'user',
                  content: [
                    { type: 'text', text: 'Summarize the note.' },
                    { type: 'file', file: { file_id: '{{file_id}}' } },
                  ],
                },
              ],
            },
            paused: true,
          })
        ).body;
        const chatRun = await waitRun(
          chat.id,
          (await call<ScheduleRunView>('POST', `/v1/schedules/${chat.id}/run`)).body.id,
        );
        // Its own ledger: the 6 distinct contents of the inbox, each once.
        expect(chatRun).toMatchObject({
          status: 'completed',
          files_new: 6,
          request_counts: { total: 6, completed: 6, failed: 0 },
        });
        const completion = JSON.parse(await readFile(join(root, 'chat-out', 'note-1.txt.json'), 'utf8')) as {
          response: { body: { object: string; model: string; choices: Array<{ message: { content: string } }> } };
        };
        expect(completion.response.body).toMatchObject({ object: 'chat.completion', model: 'gembatch-tiny' });
        expect(completion.response.body.choices[0]?.message.content.length).toBeGreaterThan(0);

        // The scheduler itself fires: a 1-second cron over an empty folder runs on its own, never two at a time.
        const ticking = (
          await call<ScheduleView>('POST', '/v1/schedules', {
            cron: '* * * * * *',
            source_folder: 'empty',
            output_folder: 'empty-out',
            task: 'summarize',
          })
        ).body;
        const cronRuns = await vi.waitFor(
          async () => {
            const data = (await call<{ data: ScheduleRunView[] }>('GET', `/v1/schedules/${ticking.id}/runs`)).body.data;
            if (data.filter((r) => r.status === 'completed').length < 2) throw new Error(`${data.length} runs`);
            return data;
          },
          { timeout: 30_000, interval: 200 },
        );
        expect(cronRuns.every((r) => r.trigger === 'cron' && r.files_new === 0)).toBe(true);
        expect((await call('DELETE', `/v1/schedules/${ticking.id}`)).status).toBe(200);
        expect((await call('GET', `/v1/schedules/${ticking.id}`)).status).toBe(404);
        expect((await call<ScheduleView>('POST', `/v1/schedules/${schedule.id}/resume`)).body.status).toBe('active');
      } catch (error) {
        const log = await readFile(join(dir.path, 'data', 'logs', 'api.log'), 'utf8').catch(() => '');
        const problems = log
          .split('\n')
          .filter(
            (line) => !line.includes('"msg":"request"') && /"level":"(error|warn|fatal)"|schedule|batch/.test(line),
          )
          .slice(-15)
          .map((line) => line.slice(0, 500));
        throw new Error(`${(error as Error).message}\napi log:\n${problems.join('\n')}`);
      } finally {
        await stack.stop(15_000);
        await dir.cleanup();
      }
    },
    240_000,
  );
});
