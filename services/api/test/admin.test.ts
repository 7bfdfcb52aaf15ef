import { createHash } from 'node:crypto';
import { FlowProducer, Worker, type Job } from 'bullmq';
import { describe, expect } from 'vitest';
import { closeAfterTest, redisTest } from '@gembatch/testing';
import { startApi } from './api-harness.ts';

const TOKEN = 'admin-token-0123456789abcdef';
const bearer = { authorization: `Bearer ${TOKEN}` };
/** Text only a document could have produced: it must never appear in a board response. */
const DOC = 'DOC-DERIVED-7f3a';

describe('admin routes', () => {
  redisTest('are not registered at all without GEMBATCH_ADMIN_TOKEN', async ({ redis }) => {
    const { app } = await startApi(redis);
    for (const url of ['/admin/queues', '/admin/queues/api/queues', '/admin/keys', '/admin']) {
      const response = await app.inject({ method: 'GET', url, headers: bearer });
      expect(response.statusCode, url).toBe(404);
    }
  });

  redisTest('need the admin token (Bearer, or Basic with it as password), compared whole', async ({ redis }) => {
    const { app } = await startApi(redis, { GEMBATCH_ADMIN_ENABLED: 'true', GEMBATCH_ADMIN_TOKEN: TOKEN });
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong-token-0123456789abcdef' },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Basic ${Buffer.from('ops:wrong').toString('base64')}` },
      { authorization: `Basic ${Buffer.from(TOKEN).toString('base64')}` },
      { 'x-api-key': TOKEN },
    ];
    for (const headers of attempts) {
      const denied = await app.inject({ method: 'GET', url: '/admin/queues', headers });
      expect(denied.statusCode, JSON.stringify(headers)).toBe(401);
      expect(denied.json().error.code).toBe('GB_ERR_UNAUTHORIZED');
      expect(denied.headers['www-authenticate']).toContain('Bearer');
    }
    expect((await app.inject({ method: 'GET', url: '/admin/queues', headers: bearer })).statusCode).toBe(200);
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/admin/queues',
          headers: { authorization: `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}` },
        })
      ).statusCode,
    ).toBe(200);
    // Unknown admin paths are behind the token too: a scan learns nothing without it.
    expect((await app.inject({ method: 'GET', url: '/admin/nothing-here' })).statusCode).toBe(401);
    const docs = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    // Operator JSON routes are documented (behind the token); the board's internal routes are not.
    expect(
      Object.keys(docs.paths)
        .filter((path) => path.startsWith('/admin'))
        .sort(),
    ).toEqual([
      '/admin/audit',
      '/admin/batches',
      '/admin/fleet',
      '/admin/keys',
      '/admin/keys/{id}',
      '/admin/tenants/{tenant}/purge',
    ]);
  });
});

describe('API keys (/admin/keys)', () => {
  const CONFIG_KEY = 'config-key-0123456789abcdef';

  redisTest(
    'are created (shown once), listed without the key, stored only hashed, and revoked for the next request',
    async ({ redis }) => {
      const {
        app,
        redis: connection,
        logs,
      } = await startApi(redis, { GEMBATCH_ADMIN_TOKEN: TOKEN, GEMBATCH_API_KEYS: `${CONFIG_KEY}:globex` });
      expect((await app.inject({ method: 'POST', url: '/admin/keys', payload: { tenant: 'acme' } })).statusCode).toBe(
        401,
      );
      const created = await app.inject({
        method: 'POST',
        url: '/admin/keys',
        headers: bearer,
        payload: { tenant: 'acme' },
      });
      expect(created.statusCode).toBe(201);
      const key = created.json<{ id: string; tenant: string; key: string; created_at: string }>();
      expect(key).toMatchObject({
        id: expect.stringMatching(/^key_[0-9a-f]{16}$/),
        tenant: 'acme',
        key: expect.stringMatching(/^gb_[A-Za-z0-9_-]{43}$/),
      });
      const other = (
        await app.inject({ method: 'POST', url: '/admin/keys', headers: bearer, payload: { tenant: 'initech' } })
      ).json<{ id: string; key: string }>();
      expect(
        (await app.inject({ method: 'POST', url: '/admin/keys', headers: bearer, payload: { tenant: 'Not A Tenant' } }))
          .statusCode,
      ).toBe(400);

      // The key works as the tenant's key; config keys keep working beside it.
      const asAcme = { authorization: `Bearer ${key.key}` };
      const job = await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: asAcme,
        payload: { text: 'hello', task: 'summarize' },
      });
      expect(job.statusCode).toBe(202);
      expect(
        (await app.inject({ method: 'GET', url: `/v1/jobs/${job.json().id}`, headers: { 'x-api-key': key.key } }))
          .statusCode,
      ).toBe(200);
      expect(
        (
          await app.inject({
            method: 'GET',
            url: `/v1/jobs/${job.json().id}`,
            headers: { authorization: `Bearer ${other.key}` },
          })
        ).statusCode,
      ).toBe(404);
      expect(
        (await app.inject({ method: 'GET', url: '/v1/jobs', headers: { authorization: `Bearer ${CONFIG_KEY}` } }))
          .statusCode,
      ).toBe(200);
      // The admin token is not a tenant key.
      expect((await app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer })).statusCode).toBe(401);

      const listed = await app.inject({ method: 'GET', url: '/admin/keys', headers: bearer });
      expect(listed.json().data).toEqual([
        { id: key.id, tenant: 'acme', created_at: key.created_at },
        { id: other.id, tenant: 'initech', created_at: expect.any(String) },
      ]);
      expect(
        (await app.inject({ method: 'GET', url: '/admin/keys?tenant=initech', headers: bearer }))
          .json()
          .data.map((k: { id: string }) => k.id),
      ).toEqual([other.id]);
      expect(listed.body).not.toContain(key.key);
      expect(listed.body).not.toContain(createHash('sha256').update(key.key).digest('hex'));

      // Redis holds the digest, never the key.
      let stored = '';
      for (const name of await connection.keys(`${redis.prefix}:*`)) {
        const type = await connection.type(name);
        if (type === 'hash') stored += JSON.stringify(await connection.hgetall(name));
        else if (type === 'string') stored += await connection.get(name);
      }
      expect(stored).toContain(createHash('sha256').update(key.key).digest('hex'));
      expect(stored).not.toContain(key.key);
      expect(stored).not.toContain(key.key.slice(3, 20));

      const revoked = await app.inject({ method: 'DELETE', url: `/admin/keys/${key.id}`, headers: bearer });
      expect(revoked.json()).toEqual({ id: key.id, tenant: 'acme', created_at: key.created_at, revoked: true });
      const refused = await app.inject({ method: 'GET', url: '/v1/jobs', headers: asAcme });
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error.code).toBe('GB_ERR_UNAUTHORIZED');
      expect(
        (await app.inject({ method: 'GET', url: '/v1/jobs', headers: { authorization: `Bearer ${other.key}` } }))
          .statusCode,
      ).toBe(200);
      expect((await app.inject({ method: 'DELETE', url: `/admin/keys/${key.id}`, headers: bearer })).statusCode).toBe(
        404,
      );
      expect((await app.inject({ method: 'DELETE', url: '/admin/keys/not-an-id', headers: bearer })).statusCode).toBe(
        400,
      );
      expect(
        (await app.inject({ method: 'GET', url: '/admin/keys', headers: bearer }))
          .json()
          .data.map((k: { id: string }) => k.id),
      ).toEqual([other.id]);
      expect(logs.join('')).not.toContain(key.key);
    },
  );

  redisTest('with only an admin token, auth is on: nothing is served without a key', async ({ redis }) => {
    const { app } = await startApi(redis, { GEMBATCH_ADMIN_TOKEN: TOKEN });
    expect(
      (await app.inject({ method: 'POST', url: '/v1/jobs', payload: { text: 'x', task: 'summarize' } })).statusCode,
    ).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/jobs' })).statusCode).toBe(401);
  });
});

describe('/metrics on the API port', () => {
  redisTest(
    'is open with auth off, needs the admin token with auth on, and is absent with keys but no admin token',
    async ({ redis }) => {
      const open = await startApi(redis);
      expect((await open.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
      const guarded = await startApi(redis, { GEMBATCH_ADMIN_TOKEN: TOKEN });
      expect((await guarded.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
      expect(
        (
          await guarded.app.inject({
            method: 'GET',
            url: '/metrics',
            headers: { authorization: 'Bearer config-key-0123456789abcdef' },
          })
        ).statusCode,
      ).toBe(401);
      const scraped = await guarded.app.inject({ method: 'GET', url: '/metrics', headers: bearer });
      expect(scraped.statusCode).toBe(200);
      expect(scraped.body).toContain('gembatch_api_http_requests_total');
      const keysOnly = await startApi(redis, { GEMBATCH_API_KEYS: 'config-key-0123456789abcdef:acme' });
      expect(
        (
          await keysOnly.app.inject({
            method: 'GET',
            url: '/metrics',
            headers: { authorization: 'Bearer config-key-0123456789abcdef' },
          })
        ).statusCode,
      ).toBe(404);
    },
  );
});

describe('Bull Board', () => {
  redisTest('is read-only: every write action is refused and changes nothing', async ({ redis }) => {
    const { app, producer } = await startApi(redis, { GEMBATCH_ADMIN_ENABLED: 'true', GEMBATCH_ADMIN_TOKEN: TOKEN });
    const queue = producer.queues.extract;
    const job = await queue.add('probe', { task: 'summarize' });
    const writes: Array<['PUT' | 'POST' | 'PATCH', string, unknown?]> = [
      ['POST', '/admin/queues/api/queues/extract/add', { name: 'x', data: {} }],
      ['PUT', '/admin/queues/api/queues/extract/obliterate'],
      ['PUT', '/admin/queues/api/queues/extract/empty'],
      ['PUT', '/admin/queues/api/queues/extract/clean/waiting'],
      ['PUT', '/admin/queues/api/queues/extract/pause'],
      ['PUT', '/admin/queues/api/queues/pause'],
      ['PUT', '/admin/queues/api/queues/extract/retry/failed'],
      ['PUT', `/admin/queues/api/queues/extract/${job.id}/clean`],
      ['PATCH', `/admin/queues/api/queues/extract/${job.id}/update-data`, { data: { task: 'x' } }],
      ['PUT', '/admin/queues/api/queues/extract/concurrency', { concurrency: 1 }],
    ];
    for (const [method, url, payload] of writes) {
      const response = await app.inject({
        method,
        url,
        headers: bearer,
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
      expect(response.statusCode, `${method} ${url}`).toBe(405);
    }
    expect(await queue.getJobCounts('waiting', 'paused')).toEqual({ waiting: 1, paused: 0 });
    expect(await queue.isPaused()).toBe(false);
    expect((await queue.getJob(job.id ?? ''))?.data).toEqual({ task: 'summarize' });
    const listing = await app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: bearer });
    expect(
      listing
        .json()
        .queues.every((q: { readOnlyMode: boolean; allowRetries: boolean }) => q.readOnlyMode && !q.allowRetries),
    ).toBe(true);
  });

  redisTest(
    'shows no document-derived text: data, return values, failure reasons, stack traces, logs and flows are redacted',
    async ({ redis }) => {
      const { app, producer, logs } = await startApi(redis, {
        GEMBATCH_ADMIN_ENABLED: 'true',
        GEMBATCH_ADMIN_TOKEN: TOKEN,
      });
      const queue = producer.queues.generate;
      const connection = { url: redis.url };
      const worker = closeAfterTest(
        new Worker(
          queue.name,
          async (job: Job) => {
            await job.log(`log line quoting ${DOC}`);
            if (job.data.fail) throw new Error(`GB_ERR_SCHEMA_VALIDATION: output "${DOC}" is not an object`);
            return { ok: true, text: `summary of ${DOC}` };
          },
          { connection, prefix: redis.prefix, concurrency: 4 },
        ),
      );
      const flows = closeAfterTest(new FlowProducer({ connection, prefix: redis.prefix }));
      const done = new Promise<void>((resolve) => {
        let finished = 0;
        const count = () => {
          finished += 1;
          if (finished === 4) resolve();
        };
        worker.on('completed', count);
        worker.on('failed', count);
      });
      await queue.add('summarize', { task: 'summarize', text: DOC, prompt: DOC, metadata: { ref: DOC } });
      await queue.add('summarize', { task: 'summarize', text: DOC, fail: true }, { attempts: 1 });
      const flow = await flows.add({
        name: 'parent',
        queueName: queue.name,
        data: { task: 'summarize', text: DOC },
        children: [
          {
            name: 'child',
            queueName: queue.name,
            data: { task: 'summarize', text: DOC, fail: true },
            opts: { ignoreDependencyOnFailure: true, attempts: 1 },
          },
        ],
      });
      await done;

      const bodies: string[] = [];
      const read = async (url: string) => {
        const response = await app.inject({ method: 'GET', url, headers: bearer });
        expect(response.statusCode, url).toBe(200);
        bodies.push(response.body);
        return response.json();
      };
      const board = await read(`/admin/queues/api/queues?activeQueue=${queue.name}&status=latest&page=1`);
      const jobs = board.queues.find((q: { name: string }) => q.name === queue.name).jobs as Array<{
        id: string;
        failedReason?: string;
        returnValue?: unknown;
        stacktrace: unknown[];
      }>;
      expect(jobs.length).toBeGreaterThanOrEqual(3);
      for (const status of ['completed', 'failed'])
        await read(`/admin/queues/api/queues?activeQueue=${queue.name}&status=${status}&page=1`);
      for (const job of jobs) {
        await read(`/admin/queues/api/queues/${queue.name}/${job.id}`);
        await read(`/admin/queues/api/queues/${queue.name}/${job.id}/logs`);
      }
      const flowView = await read(`/admin/queues/api/queues/${queue.name}/${flow.job.id}/flow?depth=3&maxChildren=20`);
      // The redaction keeps what an operator needs: codes, sizes, the flow's shape.
      const failed = jobs.find((job) => job.failedReason);
      expect(failed?.failedReason).toBe('GB_ERR_SCHEMA_VALIDATION: (message redacted)');
      expect(failed?.stacktrace).toEqual([]);
      expect(jobs.find((job) => job.returnValue)?.returnValue).toMatchObject({ ok: true, bytes: expect.any(Number) });
      expect(flowView.flowRoot.children).toHaveLength(1);
      expect(JSON.stringify(flowView)).toContain('GB_ERR_SCHEMA_VALIDATION');

      // The page itself (HTML shell) and every API answer are free of document text.
      bodies.push((await app.inject({ method: 'GET', url: '/admin/queues', headers: bearer })).body);
      expect(bodies.join('\n')).not.toContain(DOC);
      expect(logs.join('')).not.toContain(DOC);
      // The source really held the text: the check above would have caught a leak.
      expect((await queue.getJobLogs(jobs[0]?.id ?? '')).logs.join('')).toContain(DOC);
    },
  );
});
