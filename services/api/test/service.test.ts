import { describe, expect } from 'vitest';
import { writeNodeHeartbeat } from '@gembatch/node-stats';
import { FileSystemBlobStore } from '@gembatch/storage';
import { openTestRedis, redisTest } from '@gembatch/testing';
import type { NodeStats } from '@gembatch/contracts';
import { startApi, upload } from './api-harness.ts';

const ACME_KEY = 'acme-key-0123456789abcdef';
const GLOBEX_KEY = 'globex-key-0123456789abcdef';
const KEYS = `${ACME_KEY}:acme, ${GLOBEX_KEY}:globex`;
const acme = { authorization: `Bearer ${ACME_KEY}` };
const globex = { 'x-api-key': GLOBEX_KEY };

function nodeStats(node: string): NodeStats {
  const now = Date.now();
  return {
    node,
    host: 'test-host',
    gpu: 'cpu',
    accelerator: 'cpu',
    engine: 'node-llama-cpp',
    model: 'tiny',
    quant: 'F16',
    capabilities: ['text'],
    started_at: now,
    heartbeat_at: now,
    sequences: 2,
    active_sequences: 0,
    context_per_sequence: 512,
    generation_tokens_per_second: 0,
    prompt_tokens_per_second: 0,
    generation_tokens_total: 0,
    prompt_tokens_total: 0,
    decode_calls_total: 0,
    vram_total_bytes: 0,
    vram_used_bytes: 0,
    ram_used_bytes: 0,
  };
}

describe('health, readiness, auth, metrics, docs, admin', () => {
  redisTest('healthz is always 200; readyz is 503 until a worker heartbeats, then 200', async ({ redis }) => {
    const { app, redis: connection } = await startApi(redis);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const notReady = await app.inject({ method: 'GET', url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toMatchObject({
      status: 'unavailable',
      checks: { redis: 'ok', workers: 0 },
      error: { code: 'GB_ERR_SERVICE_UNAVAILABLE', message: expect.stringMatching(/^workers: /) },
    });
    await writeNodeHeartbeat(connection, redis.prefix, nodeStats('node-a'));
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { redis: 'ok', workers: 1 } });
  });

  redisTest('answers 503 when Redis is gone, and a generic 500 for internal errors', async ({ redis }) => {
    const gone = openTestRedis(redis.url, { name: `${redis.prefix}:doomed` });
    await gone.ping();
    const failingStore = new FileSystemBlobStore({ root: '/nonexistent' });
    failingStore.put = async () => {
      throw new Error('EACCES: permission denied, open /srv/secret/path');
    };
    const { app, logs } = await startApi(redis, {}, { redis: gone, blobStore: failingStore });
    const internal = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { text: 'x', task: 'summarize' } });
    expect(internal.statusCode).toBe(500);
    const requestId = String(internal.headers['x-request-id']);
    expect(internal.json()).toEqual({
      error: { code: 'GB_ERR_INTERNAL', message: `internal error (request ${requestId})` },
    });
    expect(logs.join('')).toContain('/srv/secret/path');

    gone.disconnect();
    const readiness = await app.inject({ method: 'GET', url: '/readyz' });
    expect(readiness.statusCode).toBe(503);
    expect(readiness.json()).toMatchObject({
      checks: { redis: 'failed' },
      error: { message: expect.stringMatching(/^redis: /) },
    });
    const view = await app.inject({ method: 'GET', url: '/v1/jobs/job_00000000000000000000000000000000' });
    expect(view.statusCode).toBe(503);
    expect(view.json().error.code).toBe('GB_ERR_SERVICE_UNAVAILABLE');
  });

  redisTest('maps API keys to tenants and keeps tenants apart', async ({ redis }) => {
    const { app } = await startApi(redis, { GEMBATCH_API_KEYS: KEYS });
    const anonymous = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { text: 'x', task: 'summarize' } });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('Bearer');
    expect(anonymous.json().error.code).toBe('GB_ERR_UNAUTHORIZED');
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/v1/jobs',
          headers: { authorization: 'Bearer wrong-key-0123456789abcdef' },
        })
      ).statusCode,
    ).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

    const file = await upload(app, 'acme private memo', 'memo.txt', acme);
    const job = (
      await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: acme,
        payload: { file_id: file.id, task: 'summarize' },
      })
    ).json();
    expect(job.status).toBe('queued');

    expect((await app.inject({ method: 'GET', url: `/v1/files/${file.id}`, headers: acme })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/v1/files/${file.id}`, headers: globex })).statusCode).toBe(404);
    const borrowed = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: globex,
      payload: { file_id: file.id, task: 'summarize' },
    });
    expect(borrowed.statusCode).toBe(400);
    expect(borrowed.json().error).toMatchObject({
      code: 'GB_ERR_FILE_NOT_FOUND',
      message: expect.stringMatching(/^file_id: /),
    });
    for (const [method, url] of [
      ['GET', `/v1/jobs/${job.id}`],
      ['GET', `/v1/jobs/${job.id}/result`],
      ['POST', `/v1/jobs/${job.id}/cancel`],
    ] as const) {
      expect((await app.inject({ method, url, headers: globex })).statusCode).toBe(404);
    }
    expect((await app.inject({ method: 'GET', url: '/v1/jobs', headers: globex })).json().data).toEqual([]);
    expect(
      (await app.inject({ method: 'GET', url: '/v1/jobs', headers: acme }))
        .json()
        .data.map((v: { id: string }) => v.id),
    ).toEqual([job.id]);
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: acme })).json().status).toBe(
      'queued',
    );
  });

  redisTest('counts requests by route pattern, never by raw URL, and uploaded bytes', async ({ redis }) => {
    const { app } = await startApi(redis);
    const file = await upload(app, 'x'.repeat(1234));
    await app.inject({ method: 'GET', url: '/v1/jobs/job_00000000000000000000000000000000' });
    await app.inject({ method: 'GET', url: '/v1/jobs/job_11111111111111111111111111111111' });
    await app.inject({ method: 'GET', url: '/no/such/route/abc123' });
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('gembatch_api_http_requests_total{method="GET",route="/v1/jobs/:id",status="404"} 2');
    expect(metrics).toContain('gembatch_api_http_requests_total{method="POST",route="/v1/files",status="201"} 1');
    expect(metrics).toContain('gembatch_api_http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(metrics).toContain('gembatch_api_http_request_duration_seconds_count{method="GET",route="/v1/jobs/:id"} 2');
    expect(metrics).toContain('gembatch_api_upload_bytes_total 1234');
    expect(metrics).toContain('# TYPE gembatch_event_loop_lag_seconds histogram');
    expect(metrics).not.toMatch(/job_0000|abc123|file_/);
    expect(file.bytes).toBe(1234);
  });

  redisTest('serves OpenAPI built from the zod schemas', async ({ redis }) => {
    const { app } = await startApi(redis);
    const response = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        '/v1/files',
        '/v1/files/{id}',
        '/v1/jobs',
        '/v1/jobs/{id}',
        '/v1/jobs/{id}/result',
        '/v1/jobs/{id}/cancel',
        '/healthz',
        '/readyz',
      ]),
    );
    const createJob = document.paths['/v1/jobs'].post.requestBody.content['application/json'].schema;
    expect(createJob.properties.task.enum).toEqual([
      'summarize',
      'prompt',
      'extract',
      'classify',
      'redact',
      'transcribe',
      'describe',
    ]);
    expect(Object.keys(document.paths['/v1/files'].post.requestBody.content)).toEqual(['multipart/form-data']);
    expect(
      document.paths['/v1/jobs/{id}'].get.responses['200'].content['application/json'].schema.properties.status.enum,
    ).toContain('cancelled');
    expect((await app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });

  redisTest('never logs texts, prompts, passwords or API keys', async ({ redis }) => {
    const { app, logs } = await startApi(redis, { GEMBATCH_API_KEYS: KEYS });
    const file = await upload(app, 'CONFIDENTIAL-FILE-BODY', 'x.txt', acme);
    await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: acme,
      payload: {
        text: 'CONFIDENTIAL-TEXT',
        task: 'prompt',
        prompt: 'CONFIDENTIAL-PROMPT',
        metadata: { ref: 'CONFIDENTIAL-REF' },
      },
    });
    await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: acme,
      payload: { file_id: file.id, task: 'summarize', password: 'CONFIDENTIAL-PASSWORD' },
    });
    await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: acme,
      payload: {
        text: 'CONFIDENTIAL-BAD',
        task: 'summarize',
        options: { audience: 'CONFIDENTIAL-OPTION', length: 'huge' },
      },
    });
    await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: '{"text":"CONFIDENTIAL-BROKEN',
      headers: { 'content-type': 'application/json', ...acme },
    });
    await app.inject({
      method: 'GET',
      url: '/v1/jobs',
      headers: { authorization: 'Bearer CONFIDENTIAL-WRONG-KEY-000' },
    });
    const all = logs.join('');
    expect(all).toContain('job submitted');
    expect(all).not.toMatch(/CONFIDENTIAL|acme-key|globex-key/);
  });
});
