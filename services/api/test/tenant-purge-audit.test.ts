import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, onTestFinished, vi } from 'vitest';
import { BatchFeeder } from '@gembatch/batches';
import { redisKeys } from '@gembatch/contracts';
import { FileStore } from '@gembatch/storage';
import { closeAfterTest, redisTest, tempDir } from '@gembatch/testing';
import { WebhookProducer } from '@gembatch/webhooks';
import { startApi, upload } from './api-harness.ts';

const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
const KEYS = 'key-acme-0123456789abcdef:acme,key-globex-0123456789abcdef:globex';
const acme = { authorization: 'Bearer key-acme-0123456789abcdef' };
const globex = { authorization: 'Bearer key-globex-0123456789abcdef' };
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex');

describe('tenant purge and the audit stream', () => {
  redisTest(
    "purge deletes every job, file, blob and stored key of one tenant and nothing of another's; the audit stream says who did what, with ids only",
    async ({ redis }) => {
      const {
        app,
        blobStore,
        redis: connection,
      } = await startApi(redis, { GEMBATCH_API_KEYS: KEYS, GEMBATCH_ADMIN_TOKEN: ADMIN_TOKEN });
      const stored = (
        await app.inject({ method: 'POST', url: '/admin/keys', headers: admin, payload: { tenant: 'acme' } })
      ).json();
      const storedKey = { authorization: `Bearer ${stored.key}` };

      const secret = 'PRIVILEGED: patient Jane Roe, MRN 00123';
      const shared = 'content both tenants uploaded';
      const own = await upload(app, secret, 'roe.txt', acme);
      const sharedA = await upload(app, shared, 'a.txt', storedKey);
      const sharedB = await upload(app, shared, 'b.txt', globex);
      const textJob = (
        await app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: acme,
          payload: { text: `${secret} (inline)`, task: 'summarize' },
        })
      ).json();
      const fileJob = (
        await app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: acme,
          payload: { file_id: own.id, task: 'summarize' },
        })
      ).json();
      const otherJob = (
        await app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: globex,
          payload: { file_id: sharedB.id, task: 'summarize' },
        })
      ).json();
      expect((await app.inject({ method: 'GET', url: `/v1/jobs/${textJob.id}`, headers: acme })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: `/v1/files/${own.id}/content`, headers: acme })).statusCode).toBe(
        200,
      );
      expect(
        (await app.inject({ method: 'DELETE', url: `/v1/files/${sharedA.id}`, headers: storedKey })).statusCode,
      ).toBe(200);
      const sharedA2 = await upload(app, shared, 'a2.txt', acme);

      // Admin routes need the admin token.
      expect((await app.inject({ method: 'POST', url: '/admin/tenants/acme/purge', headers: acme })).statusCode).toBe(
        401,
      );
      expect((await app.inject({ method: 'GET', url: '/admin/audit' })).statusCode).toBe(401);

      const audit = await app.inject({ method: 'GET', url: '/admin/audit?tenant=acme&limit=1000', headers: admin });
      expect(audit.statusCode).toBe(200);
      const entries = audit.json().data as Array<{
        action: string;
        resource: string;
        actor: string;
        key_id?: string;
        tenant: string;
        at: string;
      }>;
      const actions = entries.map((e) => `${e.action} ${e.resource}`).reverse();
      expect(actions).toEqual([
        `key.create ${stored.id}`,
        `file.create ${own.id}`,
        `file.create ${sharedA.id}`,
        `job.submit ${textJob.id}`,
        `job.submit ${fileJob.id}`,
        `job.read ${textJob.id}`,
        `file.content ${own.id}`,
        `file.delete ${sharedA.id}`,
        `file.create ${sharedA2.id}`,
      ]);
      expect(
        entries.every(
          (e) =>
            e.tenant === 'acme' &&
            e.actor === (e.action === 'key.create' ? 'admin' : 'tenant') &&
            !Number.isNaN(Date.parse(e.at)),
        ),
      ).toBe(true);
      // Config keys are named by a digest prefix, stored keys by their id; never the key.
      expect(entries.find((e) => e.resource === sharedA.id && e.action === 'file.create')?.key_id).toBe(stored.id);
      expect(entries.find((e) => e.resource === own.id && e.action === 'file.create')?.key_id).toMatch(
        /^sha256:[0-9a-f]{16}$/,
      );
      const raw = JSON.stringify(await connection.xrange(redisKeys.audit(redis.prefix), '-', '+'));
      for (const forbidden of ['PRIVILEGED', 'Jane', 'roe.txt', 'key-acme', stored.key])
        expect(raw).not.toContain(forbidden);
      expect(
        (
          await app.inject({
            method: 'GET',
            url: `/admin/audit?action=job.submit&resource=${otherJob.id}`,
            headers: admin,
          })
        ).json().data,
      ).toHaveLength(1);

      const purged = await app.inject({ method: 'POST', url: '/admin/tenants/acme/purge', headers: admin });
      expect(purged.statusCode).toBe(200);
      expect(purged.json()).toEqual({ tenant: 'acme', jobs: 2, files: 2, keys: 1, batches: 0, schedules: 0 });

      // Nothing of acme is left: jobs, files, their bytes, the stored key, its indexes and counters.
      for (const id of [textJob.id, fileJob.id])
        expect((await app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: acme })).statusCode).toBe(404);
      expect((await app.inject({ method: 'GET', url: '/v1/files', headers: acme })).json().data).toEqual([]);
      expect((await app.inject({ method: 'GET', url: '/v1/jobs', headers: acme })).json().data).toEqual([]);
      expect((await app.inject({ method: 'GET', url: '/v1/files', headers: storedKey })).statusCode).toBe(401);
      expect(await blobStore.has(sha256Of(secret))).toBe(false);
      expect(await blobStore.has(sha256Of(`${secret} (inline)`))).toBe(false);
      expect(await connection.keys(`${redis.prefix}:tenant:acme*`)).toEqual([]);
      expect(await connection.exists(redisKeys.blobRefs(redis.prefix, sha256Of(secret)))).toBe(0);

      // globex keeps its job, its file and the content it shared.
      expect((await app.inject({ method: 'GET', url: `/v1/jobs/${otherJob.id}`, headers: globex })).statusCode).toBe(
        200,
      );
      expect((await app.inject({ method: 'GET', url: `/v1/files/${sharedB.id}/content`, headers: globex })).body).toBe(
        shared,
      );

      // The admin's key actions are audited by id (never the key), and so is the purge; a second one finds nothing.
      expect(
        (await app.inject({ method: 'GET', url: '/admin/audit?action=key.create', headers: admin })).json().data,
      ).toMatchObject([{ tenant: 'acme', actor: 'admin', resource: stored.id }]);
      expect(
        (await app.inject({ method: 'GET', url: '/admin/audit?action=key.revoke', headers: admin })).json().data,
      ).toEqual([]);
      expect(JSON.stringify(await connection.xrange(redisKeys.audit(redis.prefix), '-', '+'))).not.toContain(
        stored.key,
      );
      expect(
        (await app.inject({ method: 'GET', url: '/admin/audit?action=tenant.purge', headers: admin })).json().data,
      ).toMatchObject([{ tenant: 'acme', actor: 'admin', resource: 'acme' }]);
      expect((await app.inject({ method: 'POST', url: '/admin/tenants/acme/purge', headers: admin })).json()).toEqual({
        tenant: 'acme',
        jobs: 0,
        files: 0,
        keys: 0,
        batches: 0,
        schedules: 0,
      });
    },
  );

  redisTest(
    "purge deletes a running batch (its jobs, per-request data, webhook record, idempotency key) and a schedule (its job scheduler, runs, run jobs): no Redis key names the tenant or any of its ids, the other tenant's are intact, and the feeder brings nothing back",
    async ({ redis }) => {
      const dir = await tempDir();
      onTestFinished(() => dir.cleanup());
      await mkdir(join(dir.path, 'inbox'), { recursive: true });
      const harness = await startApi(redis, {
        GEMBATCH_API_KEYS: KEYS,
        GEMBATCH_ADMIN_TOKEN: ADMIN_TOKEN,
        GEMBATCH_SCHEDULE_ROOT: dir.path,
        GEMBATCH_WEBHOOK_ALLOWED_URLS: 'https://hooks.example.com/',
        GEMBATCH_WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
      });
      const { app, redis: connection } = harness;
      // No worker: the batch stays in progress with its requests waiting in the queues.
      const feeder = closeAfterTest(
        new BatchFeeder({
          redis: connection,
          prefix: redis.prefix,
          producer: harness.producer,
          blobStore: harness.blobStore,
          files: new FileStore({ redis: connection, prefix: redis.prefix, blobs: harness.blobStore }),
          logger: app.log as never,
        }),
      );
      await feeder.start();
      const webhooks = closeAfterTest(new WebhookProducer({ connection, prefix: redis.prefix }));
      const post = (
        url: string,
        headers: Record<string, string>,
        payload?: object,
        extra: Record<string, string> = {},
      ) => app.inject({ method: 'POST', url, headers: { ...headers, ...extra }, ...(payload ? { payload } : {}) });
      const line = (id: string) =>
        JSON.stringify({
          custom_id: id,
          method: 'POST',
          url: '/v1/jobs',
          body: { text: `confidential memo ${id}`, task: 'summarize' },
        });
      const startBatch = async (headers: Record<string, string>) => {
        const input = await upload(app, `${line('a')}\n${line('b')}\n${line('c')}\n`, 'input.jsonl', headers);
        const batch = (
          await post(
            '/v1/batches',
            headers,
            {
              input_file_id: input.id,
              endpoint: '/v1/jobs',
              completion_window: '24h',
              webhook_url: 'https://hooks.example.com/done',
            },
            { 'idempotency-key': 'nightly' },
          )
        ).json<{ id: string }>();
        const jobIds = await vi.waitFor(
          async () => {
            const ids = Object.values(await connection.hgetall(redisKeys.batchInflight(redis.prefix, batch.id)));
            if (ids.length < 3) throw new Error('not fed yet');
            return ids;
          },
          { timeout: 20_000, interval: 50 },
        );
        return { input, batch, jobIds };
      };
      const startSchedule = async (headers: Record<string, string>) => {
        const schedule = (
          await post('/v1/schedules', headers, {
            cron: '*/5 * * * *',
            source_folder: 'inbox',
            output_folder: 'out',
            task: 'summarize',
          })
        ).json<{ id: string }>();
        const run = (await post(`/v1/schedules/${schedule.id}/run`, headers)).json<{ id: string }>();
        return { schedule, run };
      };
      const ours = await startBatch(acme);
      const theirs = await startBatch(globex);
      const ourSchedule = await startSchedule(acme);
      const theirSchedule = await startSchedule(globex);
      // A webhook event of each batch, waiting in the webhooks queue (no worker sends it).
      const ourEvent = await webhooks.send({
        subjectId: ours.batch.id,
        url: 'https://hooks.example.com/done',
        type: 'batch.cancelled',
        data: { id: ours.batch.id },
      });
      const theirEvent = await webhooks.send({
        subjectId: theirs.batch.id,
        url: 'https://hooks.example.com/done',
        type: 'batch.cancelled',
        data: { id: theirs.batch.id },
      });

      const allKeys = async () => {
        const keys: string[] = [];
        let cursor = '0';
        do {
          const [next, found] = await connection.scan(cursor, 'MATCH', `${redis.prefix}:*`, 'COUNT', 1000);
          cursor = next;
          keys.push(...found);
        } while (cursor !== '0');
        return keys;
      };
      const ourIds = [
        'acme',
        ourEvent,
        ours.batch.id,
        ours.input.id,
        ...ours.jobIds,
        ourSchedule.schedule.id,
        ourSchedule.run.id,
      ];
      const theirIds = [
        theirEvent,
        theirs.batch.id,
        theirs.input.id,
        ...theirs.jobIds,
        theirSchedule.schedule.id,
        theirSchedule.run.id,
      ];
      const naming = (keys: string[], ids: string[]) => keys.filter((key) => ids.some((id) => key.includes(id)));
      const before = await allKeys();
      for (const id of ourIds) expect(naming(before, [id]), id).not.toEqual([]);
      const theirsBefore = naming(before, theirIds).sort();

      const purged = await post('/admin/tenants/acme/purge', admin);
      expect(purged.statusCode).toBe(200);
      expect(purged.json()).toEqual({ tenant: 'acme', jobs: 0, files: 1, keys: 0, batches: 1, schedules: 1 });
      expect(naming(await allKeys(), ourIds)).toEqual([]);

      // The feeder keeps running: a new batch of globex is validated and fed, and a reconcile of
      // every job it knew (every 5 s) passes; nothing of acme comes back.
      const purgedAt = Date.now();
      const later = await startBatch(globex);
      await vi.waitFor(
        () => {
          if (Date.now() - purgedAt < 6_000) throw new Error('waiting for a reconcile');
        },
        { timeout: 20_000, interval: 100 },
      );
      expect(naming(await allKeys(), ourIds)).toEqual([]);
      expect(naming(await allKeys(), theirIds).sort()).toEqual(theirsBefore);
      expect(
        (await app.inject({ method: 'GET', url: `/v1/batches/${theirs.batch.id}`, headers: globex })).json(),
      ).toMatchObject({ status: 'in_progress' });
      expect(
        (
          await app.inject({ method: 'GET', url: `/v1/schedules/${theirSchedule.schedule.id}`, headers: globex })
        ).json(),
      ).toMatchObject({ status: 'active' });
      expect(later.jobIds).toHaveLength(3);
      expect((await app.inject({ method: 'GET', url: `/v1/batches/${ours.batch.id}`, headers: acme })).statusCode).toBe(
        404,
      );
      expect((await post('/admin/tenants/acme/purge', admin)).json()).toEqual({
        tenant: 'acme',
        jobs: 0,
        files: 0,
        keys: 0,
        batches: 0,
        schedules: 0,
      });
    },
  );
  redisTest(
    "purge deletes the tenant's jobs still waiting for a fair-share slot: their submissions, list and inline texts go, another tenant's waiting job stays",
    async ({ redis }) => {
      // A window of 1: the first job takes it, the others wait in their tenants' lists.
      const {
        app,
        blobStore,
        redis: connection,
      } = await startApi(redis, {
        GEMBATCH_API_KEYS: KEYS,
        GEMBATCH_ADMIN_TOKEN: ADMIN_TOKEN,
        GEMBATCH_BATCH_WINDOW: '1',
      });
      const submit = async (headers: Record<string, string>, text: string) =>
        (await app.inject({ method: 'POST', url: '/v1/jobs', headers, payload: { text, task: 'summarize' } })).json<{
          id: string;
          status: string;
        }>();
      const jobs = [
        await submit(acme, 'acme first'),
        await submit(acme, 'acme waiting one'),
        await submit(acme, 'acme waiting two'),
      ];
      const other = await submit(globex, 'globex waiting');
      expect(await connection.llen(redisKeys.pendingJobs(redis.prefix, 'acme'))).toBe(2);
      // One waiting job whose index entry is gone (expired) is found through the list.
      await connection.zrem(redisKeys.tenantJobs(redis.prefix, 'acme'), (jobs[2] as { id: string }).id);

      const purged = await app.inject({ method: 'POST', url: '/admin/tenants/acme/purge', headers: admin });
      expect(purged.json()).toMatchObject({ tenant: 'acme', jobs: 2 });
      for (const { id } of jobs)
        expect((await app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: acme })).statusCode).toBe(404);
      expect(await connection.exists(redisKeys.pendingJobs(redis.prefix, 'acme'))).toBe(0);
      expect(await connection.sismember(redisKeys.pendingTenants(redis.prefix), 'acme')).toBe(0);
      expect(await connection.hkeys(redisKeys.pendingJobData(redis.prefix))).toEqual([other.id]);
      expect(await blobStore.has(sha256Of('acme waiting one'))).toBe(false);
      expect((await app.inject({ method: 'GET', url: `/v1/jobs/${other.id}`, headers: globex })).json()).toMatchObject({
        id: other.id,
        status: 'queued',
      });
    },
  );
});
