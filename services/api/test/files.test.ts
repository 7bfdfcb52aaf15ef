import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { openAsBlob } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect } from 'vitest';
import { redisKeys } from '@gembatch/contracts';
import { findRepoRoot, redisTest } from '@gembatch/testing';
import { multipart, startApi, upload } from './api-harness.ts';

const sha256Of = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const corpusDir = resolve(findRepoRoot(), process.env.GEMBATCH_CORPUS_DIR ?? '../shared/corpus');
const corpusPdf = join(corpusDir, 'pdfs/medical/discharge-summary-sample.pdf');

describe('POST /v1/files and GET /v1/files/:id', () => {
  redisTest('streams an upload into the blob store and records it for the tenant', async ({ redis }) => {
    const { app, blobStore, redis: connection } = await startApi(redis);
    const content = 'Patient was discharged in stable condition.\n'.repeat(2_000);
    const body = multipart([{ name: 'file', filename: 'C:\\scans\\summary.txt', type: 'text/plain', content }]);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/files',
      payload: body.payload,
      headers: body.headers,
    });
    expect(response.statusCode).toBe(201);
    const file = response.json();
    expect(file).toEqual({
      id: expect.stringMatching(/^file_[0-9a-f]{32}$/),
      object: 'file',
      bytes: Buffer.byteLength(content),
      filename: 'summary.txt',
      purpose: 'user_data',
      status: 'processed',
      sha256: sha256Of(content),
      created_at: expect.any(Number),
      expires_at: expect.any(Number),
    });
    // Unix seconds, as OpenAI's SDKs expect.
    expect(Math.abs(file.created_at - Date.now() / 1000)).toBeLessThan(600);
    expect(file.expires_at - file.created_at).toBe(7 * 24 * 60 * 60);
    expect((await readFile(await blobStore.path(file.sha256), 'utf8')) === content).toBe(true);
    expect(await connection.hgetall(redisKeys.file(redis.prefix, file.id))).toMatchObject({
      tenant: 'default',
      sha256: file.sha256,
      bytes: String(file.bytes),
      declared_type: 'text/plain',
    });

    const read = await app.inject({ method: 'GET', url: `/v1/files/${file.id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(file);
  });

  redisTest('accepts a zero-byte upload', async ({ redis }) => {
    const { app } = await startApi(redis);
    const file = await upload(app, Buffer.alloc(0), 'empty.pdf');
    expect(file).toMatchObject({ bytes: 0, sha256: sha256Of('') });
  });

  redisTest('refuses an upload over the limit with 413 over real HTTP, keeping nothing', async ({ redis }) => {
    const { app, blobStore } = await startApi(redis, { GEMBATCH_MAX_UPLOAD_BYTES: '4KiB' });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    // 256 KiB: far past the limit, so the server answers while the client is still sending.
    const big = Buffer.alloc(256 * 1024, 7);
    const form = new FormData();
    form.append('file', new Blob([big]), 'big.bin');
    const refused = await fetch(`${address}/v1/files`, { method: 'POST', body: form });
    expect(refused.status).toBe(413);
    expect(await refused.json()).toEqual({
      error: { code: 'GB_ERR_PAYLOAD_TOO_LARGE', message: 'file: the upload is larger than the limit of 4096 bytes' },
    });
    expect(await blobStore.has(sha256Of(big))).toBe(false);
    expect(await readdir(join(blobStore.root, '.tmp'))).toEqual([]);

    // Exactly the limit is fine, on the same server.
    const exact = new FormData();
    exact.append('file', new Blob([Buffer.alloc(4096, 1)]), 'exact.bin');
    const accepted = await fetch(`${address}/v1/files`, { method: 'POST', body: exact });
    expect(accepted.status).toBe(201);
    expect(((await accepted.json()) as { bytes: number }).bytes).toBe(4096);
  });

  redisTest('names the field when the multipart body is wrong', async ({ redis }) => {
    const { app } = await startApi(redis);
    const wrongPart = multipart([{ name: 'document', filename: 'a.txt', content: 'hello' }]);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/files',
      payload: wrongPart.payload,
      headers: wrongPart.headers,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({
      code: 'GB_ERR_BAD_REQUEST',
      message: expect.stringMatching(/^file: /),
    });

    const fieldsOnly = multipart([{ name: 'purpose', content: 'batch' }]);
    const noFile = await app.inject({
      method: 'POST',
      url: '/v1/files',
      payload: fieldsOnly.payload,
      headers: fieldsOnly.headers,
    });
    expect(noFile.statusCode).toBe(400);
    expect(noFile.json().error.message).toMatch(/^file: /);

    const json = await app.inject({ method: 'POST', url: '/v1/files', payload: { file: 'x' } });
    expect(json.statusCode).toBe(400);
    expect(json.json().error).toMatchObject({
      code: 'GB_ERR_BAD_REQUEST',
      message: expect.stringMatching(/^file: .*multipart/),
    });
  });

  redisTest('answers 404 for unknown and malformed file ids', async ({ redis }) => {
    const { app } = await startApi(redis);
    for (const id of ['file_00000000000000000000000000000000', 'nope', '..%2F..%2Fetc']) {
      const response = await app.inject({ method: 'GET', url: `/v1/files/${id}` });
      expect(response.statusCode).toBe(404);
      expect(response.json().error.code).toBe('GB_ERR_NOT_FOUND');
    }
  });

  redisTest.skipIf(!existsSync(corpusPdf))(
    'uploads a real PDF from the corpus over HTTP, byte for byte',
    async ({ redis }) => {
      const { app, blobStore } = await startApi(redis);
      const address = await app.listen({ port: 0, host: '127.0.0.1' });
      const form = new FormData();
      form.append('file', await openAsBlob(corpusPdf, { type: 'application/pdf' }), 'discharge-summary-sample.pdf');
      const response = await fetch(`${address}/v1/files`, { method: 'POST', body: form });
      expect(response.status).toBe(201);
      const bytes = await readFile(corpusPdf);
      expect(await response.json()).toMatchObject({
        bytes: bytes.length,
        sha256: sha256Of(bytes),
        filename: 'discharge-summary-sample.pdf',
      });
      expect((await readFile(await blobStore.path(sha256Of(bytes)))).equals(bytes)).toBe(true);
    },
  );
});
