import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { BatchFeeder, type BatchObject } from '@gembatch/batches';
import type { NodeStats } from '@gembatch/contracts';
import { writeNodeHeartbeat } from '@gembatch/node-stats';
import { FileStore } from '@gembatch/storage';
import { closeAfterTest, redisTest } from '@gembatch/testing';
import { CONSOLE_ASSETS_DIR } from '../src/routes/console-routes.ts';
import { startApi, upload } from './api-harness.ts';

const KEY_A = 'console-test-key-a-0123456789';
const KEY_B = 'console-test-key-b-0123456789';
const ADMIN = 'console-test-admin-0123456789';
const AUTH = { GEMBATCH_API_KEYS: `${KEY_A}:tenant-a,${KEY_B}:tenant-b` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('the web console: assets, per-request list, fleet view', () => {
  redisTest(
    'GET /console serves the hand-written page and modules with a same-origin-only CSP; no asset names another origin',
    async ({ redis }) => {
      const { app } = await startApi(redis, AUTH);
      const page = await app.inject({ method: 'GET', url: '/console' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.headers['content-security-policy']).toContain("default-src 'self'");
      expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
      const script = await app.inject({ method: 'GET', url: '/console/app.js' });
      expect(script.headers['content-type']).toMatch(/^text\/javascript/);
      expect(
        (
          await app.inject({
            method: 'GET',
            url: '/console/app.js',
            headers: { 'if-none-match': String(script.headers.etag) },
          })
        ).statusCode,
      ).toBe(304);
      expect((await app.inject({ method: 'GET', url: '/console/missing.js' })).statusCode).toBe(404);
      expect((await app.inject({ method: 'GET', url: '/console/..%2Fsrc%2Fenv.ts' })).statusCode).toBe(404);
      // Every reference in the page is local; scripts use no URL but the SVG namespace name.
      for (const ref of page.body.matchAll(/(?:src|href)="([^"]+)"/g)) expect(ref[1]).toMatch(/^(\/console\/|#|data:)/);
      for (const name of await readdir(CONSOLE_ASSETS_DIR)) {
        const text = await readFile(join(CONSOLE_ASSETS_DIR, name), 'utf8');
        expect(
          [...text.matchAll(/https?:\/\/[^\s'"`)]+/g)]
            .map((m) => m[0])
            .filter((url) => url !== 'http://www.w3.org/2000/svg'),
          name,
        ).toEqual([]);
      }
    },
  );

  redisTest(
    "GET /v1/batches/:id/requests lists a batch's requests in order (status, error code, paging), only for its tenant, never their text",
    async ({ redis }) => {
      const harness = await startApi(redis, AUTH);
      const { app } = harness;
      const feeder = new BatchFeeder({
        redis: harness.redis,
        prefix: redis.prefix,
        producer: harness.producer,
        blobStore: harness.blobStore,
        files: new FileStore({ redis: harness.redis, prefix: redis.prefix, blobs: harness.blobStore }),
        logger: app.log as never,
      });
      closeAfterTest(feeder);
      await feeder.start();
      const secret = 'the patient complained of chest pain';
      const lines = ['first', 'bad', 'third'].map((id) =>
        JSON.stringify({
          custom_id: id,
          method: 'POST',
          url: '/v1/jobs',
          body: { text: secret, task: id === 'bad' ? 'nope' : 'summarize' },
        }),
      );
      const input = await upload(app, lines.join('\n'), 'in.jsonl', bearer(KEY_A));
      const batch = (
        await app.inject({
          method: 'POST',
          url: '/v1/batches',
          headers: bearer(KEY_A),
          payload: { input_file_id: input.id, endpoint: '/v1/jobs' },
        })
      ).json<BatchObject>();
      await vi.waitFor(
        async () => {
          const now = (
            await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}`, headers: bearer(KEY_A) })
          ).json<BatchObject>();
          if (now.status !== 'in_progress') throw new Error(now.status);
        },
        { timeout: 20_000, interval: 50 },
      );
      // The feeder hands the good requests to the queues on its next tick; no worker runs here, so they stay queued.
      const list = await vi.waitFor(
        async () => {
          const response = await app.inject({
            method: 'GET',
            url: `/v1/batches/${batch.id}/requests`,
            headers: bearer(KEY_A),
          });
          if (response.json<{ data: Array<{ status: string }> }>().data.some((r) => r.status === 'pending'))
            throw new Error('not fed yet');
          return response;
        },
        { timeout: 20_000, interval: 50 },
      );
      expect(list.statusCode).toBe(200);
      expect(list.body).not.toContain(secret);
      const body = list.json<{
        data: Array<{
          index: number;
          custom_id: string;
          status: string;
          job_id: string | null;
          error: { code: string } | null;
        }>;
        total: number;
        has_more: boolean;
      }>();
      expect(body).toMatchObject({ object: 'list', total: 3, offset: 0, has_more: false });
      expect(body.data.map((r) => [r.index, r.custom_id])).toEqual([
        [0, 'first'],
        [1, 'bad'],
        [2, 'third'],
      ]);
      expect(body.data[1]).toMatchObject({
        status: 'failed',
        job_id: null,
        error: { code: 'GB_ERR_BAD_REQUEST' },
        timings: null,
      });
      for (const row of [body.data[0], body.data[2]])
        expect(row).toMatchObject({ status: 'queued', job_id: expect.stringMatching(/^job_/), error: null });

      const page = (
        await app.inject({
          method: 'GET',
          url: `/v1/batches/${batch.id}/requests?offset=1&limit=1`,
          headers: bearer(KEY_A),
        })
      ).json<typeof body>();
      expect(page).toMatchObject({ offset: 1, has_more: true, data: [{ custom_id: 'bad' }] });
      expect(
        (await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}/requests?limit=500`, headers: bearer(KEY_A) }))
          .statusCode,
      ).toBe(400);
      expect(
        (await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}/requests`, headers: bearer(KEY_B) }))
          .statusCode,
      ).toBe(404);
      expect((await app.inject({ method: 'GET', url: `/v1/batches/${batch.id}/requests` })).statusCode).toBe(401);
    },
  );

  redisTest(
    'GET /admin/fleet: absent without GEMBATCH_ADMIN_TOKEN; with it, 401 for tenant keys, nodes and queue depths for the admin; both routes in OpenAPI',
    async ({ redis }) => {
      const off = await startApi(redis, AUTH);
      expect((await off.app.inject({ method: 'GET', url: '/admin/fleet', headers: bearer(ADMIN) })).statusCode).toBe(
        404,
      );

      const { app, redis: connection } = await startApi(redis, { ...AUTH, GEMBATCH_ADMIN_TOKEN: ADMIN });
      expect((await app.inject({ method: 'GET', url: '/admin/fleet', headers: bearer(KEY_A) })).statusCode).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/admin/fleet' })).statusCode).toBe(401);
      const now = Date.now();
      const stats: NodeStats = {
        node: 'gpu-7',
        host: 'h',
        gpu: 'H200',
        accelerator: 'cuda',
        engine: 'node-llama-cpp',
        model: 'gemma-4-12b',
        quant: 'Q8_0',
        capabilities: ['text', 'image'],
        started_at: now,
        heartbeat_at: now,
        sequences: 16,
        active_sequences: 5,
        context_per_sequence: 8192,
        generation_tokens_per_second: 412.5,
        prompt_tokens_per_second: 0,
        generation_tokens_total: 1000,
        prompt_tokens_total: 0,
        decode_calls_total: 10,
        vram_total_bytes: 141e9,
        vram_used_bytes: 60e9,
        ram_used_bytes: 1e9,
      };
      await writeNodeHeartbeat(connection, redis.prefix, stats);
      const fleet = await app.inject({ method: 'GET', url: '/admin/fleet', headers: bearer(ADMIN) });
      expect(fleet.statusCode).toBe(200);
      expect(fleet.json()).toMatchObject({
        object: 'fleet',
        nodes: [
          {
            node: 'gpu-7',
            model: 'gemma-4-12b',
            quant: 'Q8_0',
            capabilities: ['text', 'image'],
            sequences: 16,
            active_sequences: 5,
            generation_tokens_per_second: 412.5,
            vram_used_bytes: 60e9,
            ram_total_bytes: null,
          },
        ],
        queues: expect.arrayContaining([expect.objectContaining({ name: 'generate', waiting: 0, active: 0 })]),
      });

      const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, unknown> }>();
      expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/batches/{id}/requests', '/admin/fleet']));
      expect(Object.keys(spec.paths).filter((p) => p.startsWith('/console'))).toEqual([]);
    },
  );
  redisTest(
    "GET /admin/batches: every tenant's batches newest first for the admin (ids, statuses, counts; no metadata), paged; 401 for a tenant key, absent without the token; in OpenAPI",
    async ({ redis }) => {
      const off = await startApi(redis, AUTH);
      expect((await off.app.inject({ method: 'GET', url: '/admin/batches', headers: bearer(ADMIN) })).statusCode).toBe(
        404,
      );

      const { app } = await startApi(redis, { ...AUTH, GEMBATCH_ADMIN_TOKEN: ADMIN });
      const line = JSON.stringify({
        custom_id: 'one',
        method: 'POST',
        url: '/v1/jobs',
        body: { text: 'hello', task: 'summarize' },
      });
      const created: Array<{ id: string; tenant: string }> = [];
      for (const [key, tenant] of [
        [KEY_A, 'tenant-a'],
        [KEY_B, 'tenant-b'],
        [KEY_A, 'tenant-a'],
      ] as const) {
        const input = await upload(app, line, 'in.jsonl', bearer(key));
        const batch = (
          await app.inject({
            method: 'POST',
            url: '/v1/batches',
            headers: bearer(key),
            payload: { input_file_id: input.id, endpoint: '/v1/jobs', metadata: { project: 'secret-project-name' } },
          })
        ).json<BatchObject>();
        created.push({ id: batch.id, tenant });
      }
      expect((await app.inject({ method: 'GET', url: '/admin/batches', headers: bearer(KEY_A) })).statusCode).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/admin/batches' })).statusCode).toBe(401);
      expect(
        (await app.inject({ method: 'GET', url: '/admin/batches?limit=0', headers: bearer(ADMIN) })).statusCode,
      ).toBe(400);

      const all = await app.inject({ method: 'GET', url: '/admin/batches', headers: bearer(ADMIN) });
      expect(all.statusCode).toBe(200);
      expect(all.body).not.toContain('secret-project-name');
      type Row = { id: string; tenant: string; status: string; request_counts: { total: number }; created_at: number };
      const body = all.json<{ data: Row[]; has_more: boolean; first_id: string; last_id: string }>();
      expect(body.has_more).toBe(false);
      // Newest first: creation order reversed (ties in the same millisecond are ordered by id, so compare as a set too).
      expect(new Set(body.data.map((r) => `${r.tenant}/${r.id}`))).toEqual(
        new Set(created.map((c) => `${c.tenant}/${c.id}`)),
      );
      for (let i = 1; i < body.data.length; i++)
        expect(body.data[i - 1]!.created_at).toBeGreaterThanOrEqual(body.data[i]!.created_at);
      for (const row of body.data)
        expect(Object.keys(row).sort()).toEqual(['created_at', 'id', 'object', 'request_counts', 'status', 'tenant']);

      // Paging one at a time walks the same list with no gap or repeat.
      const walked: string[] = [];
      let after = '';
      for (let page = 0; page < 5; page++) {
        const next = (
          await app.inject({
            method: 'GET',
            url: `/admin/batches?limit=1${after ? `&after=${after}` : ''}`,
            headers: bearer(ADMIN),
          })
        ).json<{ data: Row[]; has_more: boolean; last_id: string }>();
        walked.push(...next.data.map((r) => r.id));
        if (!next.has_more) break;
        after = next.last_id;
      }
      expect(walked).toEqual(body.data.map((r) => r.id));
      expect(
        (await app.inject({ method: 'GET', url: '/admin/batches?after=batch_unknown', headers: bearer(ADMIN) })).json(),
      ).toMatchObject({ data: [], has_more: false });

      const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{
        paths: Record<string, { get?: { tags?: string[] } }>;
      }>();
      expect(spec.paths['/admin/batches']?.get?.tags).toEqual(['admin']);
    },
  );
});
