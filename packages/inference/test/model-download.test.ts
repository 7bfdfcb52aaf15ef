import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { ensureTestModel, tempDir } from '@gembatch/testing';
import { downloadFile, GEMMA4_12B_CATALOG, resolveModel, type HardwareInfo } from '../src/index.ts';

interface Served {
  bytes: Buffer;
  /** sha256 the server advertises (defaults to the real one). */
  advertisedSha?: string;
}

/**
 * A Hugging Face look-alike on localhost: `HEAD /<repo>/resolve/<rev>/<file>` answers 302 with
 * `X-Linked-Etag`/`X-Linked-Size` like the Hub, the CDN path serves bytes with Range support, and
 * `/api/models/<repo>/tree/<rev>` lists files. `cutAfter` drops the connection mid-body once.
 */
async function fakeHub(files: Record<string, Served>) {
  const log: Array<{ method: string; url: string; range: string | undefined }> = [];
  const state = { cutAfter: undefined as number | undefined };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    log.push({ method: req.method ?? 'GET', url: url.pathname, range: req.headers.range });
    const tree = /^\/api\/models\/(.+)\/tree\/[^/]+$/.exec(url.pathname);
    if (tree) {
      const repo = tree[1] as string;
      const listing = Object.keys(files)
        .filter((k) => k.startsWith(`${repo}/`))
        .map((k) => ({ type: 'file', path: k.slice(repo.length + 1) }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(listing));
      return;
    }
    const resolve = /^\/(.+?\/.+?)\/resolve\/[^/]+\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const key = `${resolve[1]}/${resolve[2]}`;
      const file = files[key];
      if (!file) return void res.writeHead(404).end();
      const sha = file.advertisedSha ?? createHash('sha256').update(file.bytes).digest('hex');
      res
        .writeHead(302, {
          location: `/cdn/${encodeURIComponent(key)}`,
          'x-linked-etag': `"${sha}"`,
          'x-linked-size': String(file.bytes.length),
        })
        .end();
      return;
    }
    const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
    const file = cdn ? files[decodeURIComponent(cdn[1] as string)] : undefined;
    if (!file) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const body = file.bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-length': String(body.length),
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${file.bytes.length - 1}/${file.bytes.length}` } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    if (state.cutAfter !== undefined) {
      const cut = state.cutAfter;
      state.cutAfter = undefined;
      res.write(body.subarray(0, cut), () => res.destroy());
      return;
    }
    const stream = new PassThrough();
    stream.pipe(res);
    stream.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.unref();
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, log, state };
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('downloadFile', () => {
  it('downloads, verifies the published sha256, and returns at once the second time', async () => {
    const bytes = randomBytes(300_000);
    const hub = await fakeHub({ 'org/repo/model.gguf': { bytes } });
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const destination = path.join(dir.path, 'model.gguf');
    const progress: number[] = [];
    const first = await downloadFile({
      url: `${hub.endpoint}/org/repo/resolve/main/model.gguf`,
      destination,
      onProgress: (p) => progress.push(p.downloadedBytes),
    });
    expect(first).toMatchObject({ bytes: 300_000, sha256: sha(bytes), resumed: false, cached: false });
    expect(progress.at(-1)).toBe(300_000);
    expect(sha(await readFile(destination))).toBe(sha(bytes));
    const requests = hub.log.length;
    expect(await downloadFile({ url: `${hub.endpoint}/org/repo/resolve/main/model.gguf`, destination })).toMatchObject({
      cached: true,
    });
    expect(hub.log.length).toBe(requests);
  });

  it('resumes an interrupted download with a range request', async () => {
    const bytes = randomBytes(2_000_000);
    const hub = await fakeHub({ 'org/repo/big.gguf': { bytes } });
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const destination = path.join(dir.path, 'big.gguf');
    const url = `${hub.endpoint}/org/repo/resolve/main/big.gguf`;
    hub.state.cutAfter = 700_000;
    const failure = await downloadFile({ url, destination }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GembatchError);
    expect((failure as GembatchError).message).toMatch(/run it again to resume/);
    const kept = (await stat(`${destination}.partial`)).size;
    expect(kept).toBeGreaterThan(0);
    const second = await downloadFile({ url, destination });
    expect(second).toMatchObject({ resumed: true, bytes: 2_000_000, sha256: sha(bytes) });
    expect(hub.log.filter((r) => r.range !== undefined).at(-1)?.range).toBe(`bytes=${kept}-`);
    expect(existsSync(`${destination}.partial`)).toBe(false);
  });

  it('rejects a file whose sha256 does not match and deletes the partial', async () => {
    const bytes = randomBytes(10_000);
    const hub = await fakeHub({ 'org/repo/bad.gguf': { bytes, advertisedSha: 'a'.repeat(64) } });
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const destination = path.join(dir.path, 'bad.gguf');
    const failure = await downloadFile({ url: `${hub.endpoint}/org/repo/resolve/main/bad.gguf`, destination }).catch(
      (e: unknown) => e,
    );
    expect((failure as GembatchError).code).toBe('GB_ERR_MODEL_CHECKSUM');
    expect((failure as GembatchError).message).toMatch(/failed verification/);
    expect(existsSync(destination) || existsSync(`${destination}.partial`)).toBe(false);
  });

  it('a missing file is GB_ERR_MODEL_LOAD with the HTTP status', async () => {
    const hub = await fakeHub({});
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    await expect(
      downloadFile({
        url: `${hub.endpoint}/org/repo/resolve/main/none.gguf`,
        destination: path.join(dir.path, 'x.gguf'),
      }),
    ).rejects.toThrow(/HTTP 404/);
  });
});

const hardware = (memoryBytes: number): HardwareInfo => ({
  accelerator: 'cpu',
  gpuNames: [],
  vramTotalBytes: 0,
  vramFreeBytes: 0,
  unifiedMemory: false,
  ramTotalBytes: memoryBytes,
  ramFreeBytes: memoryBytes,
  cpuCores: 2,
  cpuMathCores: 2,
  memoryBytes,
  memoryKind: 'ram',
  memoryOverridden: false,
  recommendedThreads: 1,
});

describe('resolveModel', () => {
  it('downloads the catalog entry chosen for the hardware and plans with the real file', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    const hub = await fakeHub({
      'test/tiny/tiny-q8.gguf': { bytes: model },
      'test/tiny/tiny-f16.gguf': { bytes: model },
    });
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const catalog = {
      ...GEMMA4_12B_CATALOG,
      architecture: {
        ...GEMMA4_12B_CATALOG.architecture,
        layers: 2,
        globalLayers: 2,
        kvHeads: 2,
        headDim: 64,
        slidingWindow: undefined,
        trainContext: 4096,
      },
      computeBufferBytes: 1_000_000,
      entries: [
        {
          quant: 'F16',
          file: 'tiny-f16.gguf',
          source: 'hf:test/tiny/tiny-f16.gguf',
          bytes: 500_000_000,
          qualityRank: 100,
          note: 'too big here',
        },
        {
          quant: 'Q8_0',
          file: 'tiny-q8.gguf',
          source: 'hf:test/tiny/tiny-q8.gguf',
          bytes: model.length,
          qualityRank: 90,
          note: 'fits',
        },
      ],
    };
    const resolved = await resolveModel({
      modelsDir: dir.path,
      hardware: hardware(64 * 1024 ** 2),
      catalog,
      endpoint: hub.endpoint,
      sequences: 4,
      contextPerSequence: 1024,
    });
    expect(resolved.quant).toBe('Q8_0');
    expect(resolved.path).toBe(path.join(dir.path, 'tiny-q8.gguf'));
    expect(resolved.choice?.sequences).toBe(4);
    expect(resolved.choice?.reason).toMatch(/Q8_0/);
    expect(sha(await readFile(resolved.path))).toBe(sha(model));
  });

  it('takes an hf:<repo>:<quant> URI, and a local path as is', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    const hub = await fakeHub({
      'test/tiny/tiny-Q8_0.gguf': { bytes: model },
      'test/tiny/mmproj-tiny-F16.gguf': { bytes: model },
    });
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const byQuant = await resolveModel({
      model: 'hf:test/tiny:Q8_0',
      modelsDir: dir.path,
      hardware: hardware(8 * 1024 ** 3),
      endpoint: hub.endpoint,
    });
    expect(path.basename(byQuant.path)).toBe('tiny-Q8_0.gguf');
    expect(byQuant.quant).toBe('Q8_0');
    const local = await resolveModel({ model: byQuant.path, modelsDir: dir.path, hardware: hardware(8 * 1024 ** 3) });
    expect(local).toMatchObject({ path: byQuant.path, source: 'file' });
    expect(local.choice?.sequences).toBeGreaterThanOrEqual(1);
    await expect(
      resolveModel({ model: path.join(dir.path, 'missing.gguf'), modelsDir: dir.path, hardware: hardware(1) }),
    ).rejects.toThrow(/not found/);
  });
});
