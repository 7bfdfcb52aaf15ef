import { createHash } from 'node:crypto';
import { describe, expect } from 'vitest';
import { redisKeys } from '@gembatch/contracts';
import { redisTest } from '@gembatch/testing';
import { startApi, upload } from './api-harness.ts';

const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
const KEYS = 'key-acme-0123456789abcdef:acme,key-globex-0123456789abcdef:globex';
const acme = { authorization: 'Bearer key-acme-0123456789abcdef' };
const globex = { authorization: 'Bearer key-globex-0123456789abcdef' };
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex');

describe('tenant purge and the audit stream', () => {
  redisTest("purge deletes every job, file, blob and stored key of one tenant and nothing of another's; the audit stream says who did what, with ids only", async ({ redis }) => {
    const { app, blobStore, redis: connection } = await startApi(redis, { GEMBATCH_API_KEYS: KEYS, GEMBATCH_ADMIN_TOKEN: ADMIN_TOKEN });
    const stored = (await app.inject({ method: 'POST', url: '/admin/keys', headers: admin, payload: { tenant: 'acme' } })).json();
    const storedKey = { authorization: `Bearer ${stored.key}` };

    const secret = 'PRIVILEGED: patient Jane Roe, MRN 00123';
    const shared = 'content both tenants uploaded';
    const own = await upload(app, secret, 'roe.txt', acme);
    const sharedA = await upload(app, shared, 'a.txt', storedKey);
    const sharedB = await upload(app, shared, 'b.txt', globex);
    const textJob = (await app.inject({ method: 'POST', url: '/v1/jobs', headers: acme, payload: { text: `${secret} (inline)`, task: 'summarize' } })).json();
    const fileJob = (await app.inject({ method: 'POST', url: '/v1/jobs', headers: acme, payload: { file_id: own.id, task: 'summarize' } })).json();
    const otherJob = (await app.inject({ method: 'POST', url: '/v1/jobs', headers: globex, payload: { file_id: sharedB.id, task: 'summarize' } })).json();
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${textJob.id}`, headers: acme })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/v1/files/${own.id}/content`, headers: acme })).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: `/v1/files/${sharedA.id}`, headers: storedKey })).statusCode).toBe(200);
    const sharedA2 = await upload(app, shared, 'a2.txt', acme);

    // Admin routes need the admin token.
    expect((await app.inject({ method: 'POST', url: '/admin/tenants/acme/purge', headers: acme })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/admin/audit' })).statusCode).toBe(401);

    const audit = await app.inject({ method: 'GET', url: '/admin/audit?tenant=acme&limit=1000', headers: admin });
    expect(audit.statusCode).toBe(200);
    const entries = audit.json().data as Array<{ action: string; resource: string; actor: string; key_id?: string; tenant: string; at: string }>;
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
    expect(entries.every((e) => e.tenant === 'acme' && e.actor === (e.action === 'key.create' ? 'admin' : 'tenant') && !Number.isNaN(Date.parse(e.at)))).toBe(true);
    // Config keys are named by a digest prefix, stored keys by their id; never the key.
    expect(entries.find((e) => e.resource === sharedA.id && e.action === 'file.create')?.key_id).toBe(stored.id);
    expect(entries.find((e) => e.resource === own.id && e.action === 'file.create')?.key_id).toMatch(/^sha256:[0-9a-f]{16}$/);
    const raw = JSON.stringify(await connection.xrange(redisKeys.audit(redis.prefix), '-', '+'));
    for (const forbidden of ['PRIVILEGED', 'Jane', 'roe.txt', 'key-acme', stored.key]) expect(raw).not.toContain(forbidden);
    expect((await app.inject({ method: 'GET', url: `/admin/audit?action=job.submit&resource=${otherJob.id}`, headers: admin })).json().data).toHaveLength(1);

    const purged = await app.inject({ method: 'POST', url: '/admin/tenants/acme/purge', headers: admin });
    expect(purged.statusCode).toBe(200);
    expect(purged.json()).toEqual({ tenant: 'acme', jobs: 2, files: 2, keys: 1 });

    // Nothing of acme is left: jobs, files, their bytes, the stored key, its indexes and counters.
    for (const id of [textJob.id, fileJob.id]) expect((await app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: acme })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/files', headers: acme })).json().data).toEqual([]);
    expect((await app.inject({ method: 'GET', url: '/v1/jobs', headers: acme })).json().data).toEqual([]);
    expect((await app.inject({ method: 'GET', url: '/v1/files', headers: storedKey })).statusCode).toBe(401);
    expect(await blobStore.has(sha256Of(secret))).toBe(false);
    expect(await blobStore.has(sha256Of(`${secret} (inline)`))).toBe(false);
    expect(await connection.keys(`${redis.prefix}:tenant:acme*`)).toEqual([]);
    expect(await connection.exists(redisKeys.blobRefs(redis.prefix, sha256Of(secret)))).toBe(0);

    // globex keeps its job, its file and the content it shared.
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${otherJob.id}`, headers: globex })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/v1/files/${sharedB.id}/content`, headers: globex })).body).toBe(shared);

    // The admin's key actions are audited by id (never the key), and so is the purge; a second one finds nothing.
    expect((await app.inject({ method: 'GET', url: '/admin/audit?action=key.create', headers: admin })).json().data).toMatchObject([{ tenant: 'acme', actor: 'admin', resource: stored.id }]);
    expect((await app.inject({ method: 'GET', url: '/admin/audit?action=key.revoke', headers: admin })).json().data).toEqual([]);
    expect(JSON.stringify(await connection.xrange(redisKeys.audit(redis.prefix), '-', '+'))).not.toContain(stored.key);
    expect((await app.inject({ method: 'GET', url: '/admin/audit?action=tenant.purge', headers: admin })).json().data).toMatchObject([{ tenant: 'acme', actor: 'admin', resource: 'acme' }]);
    expect((await app.inject({ method: 'POST', url: '/admin/tenants/acme/purge', headers: admin })).json()).toEqual({ tenant: 'acme', jobs: 0, files: 0, keys: 0 });
  });
});
