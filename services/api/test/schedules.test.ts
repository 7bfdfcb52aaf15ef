import { randomBytes } from 'node:crypto';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, onTestFinished } from 'vitest';
import { redisTest, tempDir } from '@gembatch/testing';
import { startApi, upload } from './api-harness.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

/** An API with a schedule root (an inbox inside, a symlink leading out) and a webhook allowlist. */
async function startWithRoot(redis: Parameters<typeof startApi>[0]) {
  const dir = await tempDir();
  onTestFinished(() => dir.cleanup());
  const root = join(dir.path, 'root');
  await mkdir(join(root, 'inbox'), { recursive: true });
  await mkdir(join(dir.path, 'outside'));
  await symlink(join(dir.path, 'outside'), join(root, 'escape'));
  const harness = await startApi(redis, {
    GEMBATCH_SCHEDULE_ROOT: root,
    GEMBATCH_WEBHOOK_ALLOWED_URLS: 'https://hooks.example.com/gembatch/',
    GEMBATCH_WEBHOOK_SECRET: SECRET,
  });
  const send = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    harness.app.inject({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}) });
  return { ...harness, root, dir, send };
}

const VALID = {
  cron: '*/5 * * * *',
  source_folder: 'inbox',
  output_folder: 'results/nightly',
  task: 'summarize',
  options: { length: 'short' },
};

describe('/v1/schedules', () => {
  redisTest(
    'refuses what cannot run with 400 naming the field: folders outside the root (symlinks too), bad cron or time zone, bad task options, templates without {{file_id}}, unlisted webhooks',
    async ({ redis }) => {
      const { send, dir } = await startWithRoot(redis);
      const cases: Array<[Record<string, unknown>, string, RegExp]> = [
        [{ source_folder: dir.path }, 'GB_ERR_FOLDER_NOT_ALLOWED', /source_folder: resolves outside/],
        [{ source_folder: '../outside' }, 'GB_ERR_FOLDER_NOT_ALLOWED', /source_folder: resolves outside/],
        [{ source_folder: 'escape' }, 'GB_ERR_FOLDER_NOT_ALLOWED', /source_folder: resolves outside/],
        [{ source_folder: 'missing' }, 'GB_ERR_FOLDER_NOT_ALLOWED', /source_folder: no such folder/],
        [{ output_folder: 'escape/out' }, 'GB_ERR_FOLDER_NOT_ALLOWED', /output_folder: resolves outside/],
        [{ output_folder: '../../x' }, 'GB_ERR_FOLDER_NOT_ALLOWED', /output_folder: resolves outside/],
        [{ cron: '* * *' }, 'GB_ERR_BAD_REQUEST', /cron: expected 5 fields/],
        [{ cron: '0 25 * * *' }, 'GB_ERR_BAD_REQUEST', /^cron: /],
        [{ timezone: 'Mars/Olympus' }, 'GB_ERR_BAD_REQUEST', /timezone: not an IANA time zone/],
        [{ options: { length: 'epic' } }, 'GB_ERR_BAD_REQUEST', /^options: length/],
        [
          { task: undefined, endpoint: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'hi' }] } },
          'GB_ERR_BAD_REQUEST',
          /body: the template must use \{\{file_id\}\}/,
        ],
        [
          { endpoint: '/v1/jobs', body: { file_id: '{{file_id}}', task: 'summarize' } },
          'GB_ERR_BAD_REQUEST',
          /task: give either task or endpoint/,
        ],
        [
          { webhook: { url: 'https://hooks.example.com/elsewhere' } },
          'GB_ERR_WEBHOOK_NOT_ALLOWED',
          /webhook.url: not on the operator's webhook allowlist/,
        ],
      ];
      for (const [change, code, message] of cases) {
        const response = await send('POST', '/v1/schedules', { ...VALID, ...change });
        expect(response.statusCode, JSON.stringify(change)).toBe(400);
        expect(response.json().error, JSON.stringify(change)).toMatchObject({
          code,
          message: expect.stringMatching(message),
        });
        expect(response.body).not.toContain(dir.path);
      }
    },
  );

  redisTest(
    'create (output folder made under the root), read, list, pause (no next run), resume, run now (queued, with a run id), runs, delete',
    async ({ redis }) => {
      const { send, root } = await startWithRoot(redis);
      const created = await send('POST', '/v1/schedules', {
        ...VALID,
        timezone: 'America/New_York',
        webhook: { url: 'https://hooks.example.com/gembatch/nightly' },
        metadata: { team: 'legal' },
      });
      expect(created.statusCode, created.body).toBe(201);
      const schedule = created.json();
      expect(schedule).toMatchObject({
        object: 'schedule',
        status: 'active',
        endpoint: '/v1/jobs',
        body: { file_id: '{{file_id}}', task: 'summarize', options: { length: 'short' } },
        webhook: { url: 'https://hooks.example.com/gembatch/nightly' },
        files_seen: 0,
        last_run: null,
      });
      expect(schedule.id).toMatch(/^sched_[0-9a-f]{32}$/);
      // Every 5 minutes: the job scheduler's next tick is within 5 minutes.
      expect(schedule.next_run_at - Date.now() / 1000).toBeLessThanOrEqual(300);
      const { stat } = await import('node:fs/promises');
      expect((await stat(join(root, 'results', 'nightly'))).isDirectory()).toBe(true);

      expect((await send('GET', `/v1/schedules/${schedule.id}`)).json()).toMatchObject({
        id: schedule.id,
        timezone: 'America/New_York',
      });
      expect((await send('GET', '/v1/schedules')).json().data.map((s: { id: string }) => s.id)).toEqual([schedule.id]);
      expect((await send('POST', `/v1/schedules/${schedule.id}/pause`)).json()).toMatchObject({
        status: 'paused',
        next_run_at: null,
      });
      expect((await send('POST', `/v1/schedules/${schedule.id}/pause`)).json()).toMatchObject({ status: 'paused' });
      expect((await send('POST', `/v1/schedules/${schedule.id}/resume`)).json().next_run_at).toBeGreaterThan(0);

      const run = await send('POST', `/v1/schedules/${schedule.id}/run`);
      expect(run.statusCode).toBe(202);
      expect(run.json()).toMatchObject({
        object: 'schedule.run',
        schedule_id: schedule.id,
        trigger: 'manual',
        status: 'queued',
        batch_id: null,
      });
      expect(
        (await send('GET', `/v1/schedules/${schedule.id}/runs`)).json().data.map((r: { id: string }) => r.id),
      ).toEqual([run.json().id]);

      expect((await send('DELETE', `/v1/schedules/${schedule.id}`)).json()).toEqual({
        id: schedule.id,
        object: 'schedule.deleted',
        deleted: true,
      });
      expect((await send('GET', `/v1/schedules/${schedule.id}`)).statusCode).toBe(404);
      expect((await send('POST', `/v1/schedules/${schedule.id}/run`)).statusCode).toBe(404);
    },
  );

  redisTest(
    'without GEMBATCH_SCHEDULE_ROOT schedules are refused; a batch webhook_url off the allowlist is a 400 at submission; OpenAPI documents every schedule route',
    async ({ redis }) => {
      const { app } = await startApi(redis);
      const refused = await app.inject({ method: 'POST', url: '/v1/schedules', payload: VALID });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.message).toMatch(/GEMBATCH_SCHEDULE_ROOT/);

      const { app: guarded, send } = await startWithRoot(redis);
      const input = await upload(
        guarded,
        `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/jobs', body: { text: 'hello', task: 'summarize' } })}\n`,
        'in.jsonl',
      );
      const batch = await send('POST', '/v1/batches', {
        input_file_id: input.id,
        endpoint: '/v1/jobs',
        completion_window: '24h',
        webhook_url: 'http://169.254.169.254/latest/meta-data',
      });
      expect(batch.statusCode, batch.body).toBe(400);
      expect(batch.json().error.code).toBe('GB_ERR_WEBHOOK_NOT_ALLOWED');
      const allowed = await send('POST', '/v1/batches', {
        input_file_id: input.id,
        endpoint: '/v1/jobs',
        completion_window: '24h',
        webhook_url: 'https://hooks.example.com/gembatch/done',
      });
      expect(allowed.statusCode, allowed.body).toBe(200);
      // No delivery before the batch ends.
      expect(allowed.json()).toMatchObject({
        webhook_url: 'https://hooks.example.com/gembatch/done',
        webhook: null,
        usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
      });

      const spec = (await guarded.inject({ method: 'GET', url: '/docs/json' })).json<{
        paths: Record<string, unknown>;
      }>();
      for (const path of [
        '/v1/schedules',
        '/v1/schedules/{id}',
        '/v1/schedules/{id}/pause',
        '/v1/schedules/{id}/resume',
        '/v1/schedules/{id}/run',
        '/v1/schedules/{id}/runs',
      ])
        expect(Object.keys(spec.paths)).toContain(path);
    },
  );
});
