import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { describe, expect } from 'vitest';
import { redisKeys } from '@gembatch/contracts';
import { redisTest, type RedisTestContext } from '@gembatch/testing';
import { multipart, startApi, upload } from './api-harness.ts';

const sha256Of = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';

/** The API over real HTTP with two tenants, and an official OpenAI client per tenant pointed at it. */
async function startWithSdk(redis: RedisTestContext, env: Record<string, string> = {}) {
  const harness = await startApi(redis, { GEMBATCH_API_KEYS: `${KEY_A}:acme,${KEY_B}:globex`, ...env });
  const address = await harness.app.listen({ port: 0, host: '127.0.0.1' });
  // No retries: a refusal must show up as the refusal, not as a retried request.
  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${address}/v1`, maxRetries: 0 });
  return { ...harness, address, a: client(KEY_A), b: client(KEY_B) };
}

describe('Files API with the official openai SDK', () => {
  redisTest('create, retrieve, list, content and delete parse with the SDK types', async ({ redis }) => {
    const { a, blobStore } = await startWithSdk(redis);
    const jsonl = '{"custom_id":"r1","method":"POST","url":"/v1/jobs","body":{"text":"hi","task":"summarize"}}\n';
    const created = await a.files.create({ file: await toFile(Buffer.from(jsonl), 'input.jsonl'), purpose: 'batch' });
    expect(created).toMatchObject({
      object: 'file',
      bytes: Buffer.byteLength(jsonl),
      filename: 'input.jsonl',
      purpose: 'batch',
      status: 'processed',
    });
    expect(created.id).toMatch(/^file_[0-9a-f]{32}$/);
    expect(Number.isInteger(created.created_at)).toBe(true);
    expect((created as unknown as { sha256: string }).sha256).toBe(sha256Of(jsonl));

    expect(await a.files.retrieve(created.id)).toEqual(created);
    const content = await a.files.content(created.id);
    expect(content.headers.get('content-type')).toBe('application/octet-stream');
    expect(await content.text()).toBe(jsonl);

    const second = await a.files.create({
      file: await toFile(Buffer.from('plain notes'), 'notes.txt'),
      purpose: 'user_data',
    });
    const listed = await a.files.list();
    expect(listed.data.map((f) => f.id)).toEqual([second.id, created.id]);
    expect((await a.files.list({ purpose: 'batch' })).data.map((f) => f.id)).toEqual([created.id]);
    expect((await a.files.list({ order: 'asc' })).data.map((f) => f.id)).toEqual([created.id, second.id]);

    const deleted = await a.files.delete(created.id);
    expect(deleted).toEqual({ id: created.id, object: 'file', deleted: true });
    expect(await blobStore.has(sha256Of(jsonl))).toBe(false);
    await expect(a.files.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(a.files.delete(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await a.files.list()).data.map((f) => f.id)).toEqual([second.id]);
  });

  redisTest(
    "honours expires_after (OpenAI's form fields) within the retention, and refuses a bad one",
    async ({ redis }) => {
      const { a } = await startWithSdk(redis);
      const file = await a.files.create({
        file: await toFile(Buffer.from('short-lived'), 's.txt'),
        purpose: 'user_data',
        expires_after: { anchor: 'created_at', seconds: 3600 },
      });
      expect(file.expires_at).toBe(file.created_at + 3600);
      // Never later than GEMBATCH_FILE_RETENTION_SECONDS (7 days by default).
      const capped = await a.files.create({
        file: await toFile(Buffer.from('long-lived'), 'l.txt'),
        purpose: 'user_data',
        expires_after: { anchor: 'created_at', seconds: 30 * 24 * 3600 },
      });
      expect(capped.expires_at).toBe(capped.created_at + 7 * 24 * 3600);
      await expect(
        a.files.create({
          file: await toFile(Buffer.from('x'), 'x.txt'),
          purpose: 'user_data',
          expires_after: { anchor: 'created_at', seconds: 5 },
        }),
      ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    },
  );

  redisTest('pages with after and limit until has_more is false (SDK auto-pagination)', async ({ redis }) => {
    const { a } = await startWithSdk(redis);
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1)
      ids.push(
        (await a.files.create({ file: await toFile(Buffer.from(`file ${i}`), `f${i}.txt`), purpose: 'user_data' })).id,
      );
    const first = await a.files.list({ limit: 3, order: 'asc' });
    expect(first.data.map((f) => f.id)).toEqual(ids.slice(0, 3));
    expect(first.has_more).toBe(true);
    const all: string[] = [];
    for await (const file of a.files.list({ limit: 3, order: 'asc' })) all.push(file.id);
    expect(all).toEqual(ids);
    const newestFirst: string[] = [];
    for await (const file of a.files.list({ limit: 2 })) newestFirst.push(file.id);
    expect(newestFirst).toEqual([...ids].reverse());
  });

  redisTest("a tenant cannot see, read or delete another tenant's file", async ({ redis }) => {
    const { a, b } = await startWithSdk(redis);
    const file = await a.files.create({ file: await toFile(Buffer.from('acme only'), 'a.txt'), purpose: 'user_data' });
    await expect(b.files.retrieve(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.files.content(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.files.delete(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await b.files.list()).data).toEqual([]);
    // An after cursor from another tenant gives an empty page, not that tenant's listing.
    expect((await b.files.list({ after: file.id })).data).toEqual([]);
    expect(await a.files.retrieve(file.id)).toMatchObject({ id: file.id });
  });

  redisTest('the blob stays while another record references the same content', async ({ redis }) => {
    const { a, b, blobStore, redis: connection } = await startWithSdk(redis);
    const bytes = Buffer.from('shared content, uploaded twice');
    const one = await a.files.create({ file: await toFile(bytes, 'one.txt'), purpose: 'user_data' });
    const two = await b.files.create({ file: await toFile(bytes, 'two.txt'), purpose: 'user_data' });
    expect(await connection.smembers(redisKeys.blobRefs(redis.prefix, sha256Of(bytes)))).toHaveLength(2);
    await a.files.delete(one.id);
    expect(await blobStore.has(sha256Of(bytes))).toBe(true);
    expect(await (await b.files.content(two.id)).text()).toBe(bytes.toString());
    await b.files.delete(two.id);
    expect(await blobStore.has(sha256Of(bytes))).toBe(false);
    expect(await connection.exists(redisKeys.blobRefs(redis.prefix, sha256Of(bytes)))).toBe(0);
  });

  redisTest(
    'concurrent deletes and re-uploads of the same content never leave a record without its bytes',
    async ({ redis }) => {
      const { app, blobStore } = await startApi(redis);
      const bytes = 'the same bytes, over and over';
      const records = await Promise.all(Array.from({ length: 6 }, () => upload(app, bytes)));
      // Each round deletes one record while another upload of the same content runs.
      for (const record of records) {
        const [deleted, added] = await Promise.all([
          app.inject({ method: 'DELETE', url: `/v1/files/${record.id}` }),
          upload(app, bytes),
        ]);
        expect(deleted.statusCode).toBe(200);
        expect(await blobStore.has(added.sha256)).toBe(true);
        const content = await app.inject({ method: 'GET', url: `/v1/files/${added.id}/content` });
        expect(content.body).toBe(bytes);
      }
    },
  );

  redisTest(
    'takes purpose before or after the file, refuses an unknown one and keeps nothing then',
    async ({ redis }) => {
      const { app, blobStore } = await startApi(redis);
      const before = multipart([
        { name: 'purpose', content: 'batch' },
        { name: 'file', filename: 'a.jsonl', content: '{}\n' },
      ]);
      expect(
        (
          await app.inject({ method: 'POST', url: '/v1/files', payload: before.payload, headers: before.headers })
        ).json(),
      ).toMatchObject({ purpose: 'batch' });
      const after = multipart([
        { name: 'file', filename: 'b.jsonl', content: '{"b":1}\n' },
        { name: 'purpose', content: 'vision' },
      ]);
      expect(
        (await app.inject({ method: 'POST', url: '/v1/files', payload: after.payload, headers: after.headers })).json(),
      ).toMatchObject({ purpose: 'vision' });
      const bad = multipart([
        { name: 'file', filename: 'c.txt', content: 'never kept' },
        { name: 'purpose', content: 'nonsense' },
      ]);
      const refused = await app.inject({
        method: 'POST',
        url: '/v1/files',
        payload: bad.payload,
        headers: bad.headers,
      });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.message).toMatch(/^purpose: must be one of /);
      expect(await blobStore.has(sha256Of('never kept'))).toBe(false);
      expect(await readdir(join(blobStore.root, '.tmp'))).toEqual([]);
    },
  );

  redisTest('refuses an upload past the tenant stored-bytes quota with 429 and Retry-After', async ({ redis }) => {
    const { a, address } = await startWithSdk(redis, { GEMBATCH_TENANT_MAX_STORED_BYTES: '100' });
    const kept = await a.files.create({ file: await toFile(Buffer.alloc(60, 1), 'a.bin'), purpose: 'user_data' });
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(60, 2)]), 'b.bin');
    const refused = await fetch(`${address}/v1/files`, {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${KEY_A}` },
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('GB_ERR_QUOTA_EXCEEDED');
    // Deleting frees the quota.
    await a.files.delete(kept.id);
    expect(
      await a.files.create({ file: await toFile(Buffer.alloc(60, 2), 'b.bin'), purpose: 'user_data' }),
    ).toMatchObject({ bytes: 60 });
  });
});
