import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { FileSystemBlobStore, getJson, putJson } from '@gembatch/storage';
import { findRepoRoot } from '@gembatch/testing';

const corpusPdf = join(
  resolve(findRepoRoot(), process.env.GEMBATCH_CORPUS_DIR ?? '../shared/corpus'),
  'pdfs/legal/scotus-tarrant-v-herrmann-slip-opinion.pdf',
);

const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A stream of `count` chunks of `size` pseudo-random bytes, plus the whole as one buffer. */
function chunkedSource(count: number, size: number): { stream: () => Readable; whole: Buffer } {
  const chunks = Array.from({ length: count }, (_, i) => Buffer.alloc(size, (i * 37) % 251));
  return { stream: () => Readable.from(chunks), whole: Buffer.concat(chunks) };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GembatchError);
  expect((error as GembatchError).code).toBe(code);
}

describe('FileSystemBlobStore', () => {
  let root: string;
  let store: FileSystemBlobStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'gembatch-blobs-'));
    store = new FileSystemBlobStore({ root });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const leftoverTempFiles = async () => (await readdir(join(root, '.tmp')).catch(() => [])).length;

  it('streams many chunks in, hashing while writing, and reads them back', async () => {
    // 80 chunks of 64 KiB: 5 MiB, well past any single stream buffer.
    const { stream, whole } = chunkedSource(80, 64 * 1024);
    const put = await store.put(stream());
    expect(put).toEqual({ sha256: sha256Of(whole), bytes: whole.length });
    expect(await store.has(put.sha256)).toBe(true);
    expect(await store.bytes(put.sha256)).toBe(whole.length);
    const path = await store.path(put.sha256);
    expect(path).toBe(join(root, put.sha256.slice(0, 2), put.sha256));
    expect((await readFile(path)).equals(whole)).toBe(true);
    const back = Buffer.concat(await (await store.get(put.sha256)).toArray());
    expect(back.equals(whole)).toBe(true);
    expect(await leftoverTempFiles()).toBe(0);
  });

  it('accepts buffers and zero bytes', async () => {
    const empty = await store.put(Buffer.alloc(0));
    expect(empty).toEqual({ sha256: sha256Of(Buffer.alloc(0)), bytes: 0 });
    const hello = await store.put(Buffer.from('héllo', 'utf8'));
    expect(await text(await store.get(hello.sha256))).toBe('héllo');
    expect((await store.read(hello.sha256)).toString('utf8')).toBe('héllo');
    expect((await store.read(empty.sha256)).length).toBe(0);
  });

  it('writes again after its folders were removed behind its back (it remembers folders it made)', async () => {
    const first = await store.put(Buffer.from('first', 'utf8'));
    await rm(root, { recursive: true, force: true });
    // A buffer: the put that finds the folders gone makes them again and succeeds.
    const again = await store.put(Buffer.from('first', 'utf8'));
    expect(again.sha256).toBe(first.sha256);
    expect(await text(await store.get(again.sha256))).toBe('first');
    // A stream cannot be read twice: its put fails, and the next one makes the folders again.
    await rm(root, { recursive: true, force: true });
    const { stream, whole } = chunkedSource(3, 1000);
    const failed = await store.put(stream()).then(
      () => undefined,
      (error: unknown) => error,
    );
    const put = failed === undefined ? undefined : await store.put(stream());
    expect(await store.has(sha256Of(whole))).toBe(true);
    if (put) expect(put.sha256).toBe(sha256Of(whole));
  });

  it('refuses more than maxBytes, keeping nothing, and accepts exactly maxBytes', async () => {
    const { stream, whole } = chunkedSource(10, 1000);
    await expectCode(store.put(stream(), { maxBytes: 9_999 }), 'GB_ERR_PAYLOAD_TOO_LARGE');
    await expectCode(store.put(whole, { maxBytes: 100 }), 'GB_ERR_PAYLOAD_TOO_LARGE');
    expect(await store.has(sha256Of(whole))).toBe(false);
    expect(await leftoverTempFiles()).toBe(0);
    expect(await store.put(stream(), { maxBytes: 10_000 })).toEqual({ sha256: sha256Of(whole), bytes: 10_000 });
  });

  it('writes a buffer in one call: same address and limit as a stream, and an aborted write keeps nothing', async () => {
    const { whole } = chunkedSource(10, 1000);
    expect(await store.put(whole, { maxBytes: 10_000 })).toEqual({ sha256: sha256Of(whole), bytes: 10_000 });
    expect((await readFile(await store.path(sha256Of(whole)))).equals(whole)).toBe(true);
    const other = Buffer.from('not written');
    await expectCode(store.put(other, { signal: AbortSignal.abort() }), 'GB_ERR_CANCELLED');
    expect(await store.has(sha256Of(other))).toBe(false);
    expect(await leftoverTempFiles()).toBe(0);
  });

  it('keeps one intact copy when the same content is put concurrently', async () => {
    const { stream, whole } = chunkedSource(32, 16 * 1024);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.put(stream())));
    expect(new Set(results.map((r) => r.sha256))).toEqual(new Set([sha256Of(whole)]));
    expect(await readdir(join(root, sha256Of(whole).slice(0, 2)))).toEqual([sha256Of(whole)]);
    expect(sha256Of(await readFile(await store.path(sha256Of(whole))))).toBe(sha256Of(whole));
    expect(await leftoverTempFiles()).toBe(0);
  });

  it('reports unknown and malformed addresses as GB_ERR_FILE_NOT_FOUND', async () => {
    const unknown = 'a'.repeat(64);
    await expectCode(store.get(unknown), 'GB_ERR_FILE_NOT_FOUND');
    await expectCode(store.read(unknown), 'GB_ERR_FILE_NOT_FOUND');
    await expectCode(store.path(unknown), 'GB_ERR_FILE_NOT_FOUND');
    await expectCode(store.bytes(unknown), 'GB_ERR_FILE_NOT_FOUND');
    expect(await store.has(unknown)).toBe(false);
    expect(await store.delete(unknown)).toBe(false);
    await writeFile(join(root, 'secret'), 'x');
    await expectCode(store.get('secret'), 'GB_ERR_FILE_NOT_FOUND');
    await expectCode(store.get('../secret'), 'GB_ERR_FILE_NOT_FOUND');
    await expectCode(store.read('../secret'), 'GB_ERR_FILE_NOT_FOUND');
    await expectCode(store.path('../../etc/passwd'), 'GB_ERR_FILE_NOT_FOUND');
    expect(await store.has('../secret')).toBe(false);
  });

  it('deletes a blob', async () => {
    const { sha256 } = await store.put(Buffer.from('to delete'));
    expect(await store.delete(sha256)).toBe(true);
    expect(await store.has(sha256)).toBe(false);
    expect(await store.delete(sha256)).toBe(false);
  });

  it('cleans up when the source fails or the write is aborted', async () => {
    const failing = Readable.from(
      (async function* () {
        yield Buffer.alloc(1024);
        throw new Error('client went away');
      })(),
    );
    await expect(store.put(failing)).rejects.toThrow('client went away');

    const controller = new AbortController();
    let reads = 0;
    const endless = new Readable({
      read() {
        // Abort once some bytes are already in the temp file, so the cleanup path is exercised.
        if (++reads === 3) controller.abort();
        setImmediate(() => this.push(Buffer.alloc(1024)));
      },
    });
    await expectCode(store.put(endless, { signal: controller.signal }), 'GB_ERR_CANCELLED');
    expect(await leftoverTempFiles()).toBe(0);
  });

  it('stores and reads JSON, optionally through a parser', async () => {
    const value = { a: 1, nested: { list: ['x', 'ÿ'] } };
    const { sha256 } = await putJson(store, value);
    expect(await getJson(store, sha256)).toEqual(value);
    const parsed = await getJson(store, sha256, { parse: (v: unknown) => (v as { a: number }).a });
    expect(parsed).toBe(1);
    const notJson = await store.put(Buffer.from('{oops'));
    await expectCode(getJson(store, notJson.sha256), 'GB_ERR_INTERNAL');
    await expectCode(getJson(store, 'b'.repeat(64)), 'GB_ERR_FILE_NOT_FOUND');
  });

  it.skipIf(!existsSync(corpusPdf))('stores a real PDF from the corpus under its sha256', async () => {
    const bytes = await readFile(corpusPdf);
    const put = await store.put(createReadStream(corpusPdf), { maxBytes: bytes.length });
    expect(put).toEqual({ sha256: sha256Of(bytes), bytes: bytes.length });
    expect((await readFile(await store.path(put.sha256))).equals(bytes)).toBe(true);
  });
});
