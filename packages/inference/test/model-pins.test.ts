import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { ensureTestModel, tempDir } from '@gembatch/testing';
import { GEMMA4_12B_CATALOG, resolveModel, type CatalogEntry, type HardwareInfo } from '../src/index.ts';

const REVISION = '0123456789abcdef0123456789abcdef01234567';
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * A Hub stand-in serving `test/tiny/tiny-q8.gguf` at any revision, publishing `advertised` as its
 * sha256 (X-Linked-Etag) or none; it records the revisions asked for.
 */
async function hub(bytes: Buffer, advertised: string | undefined) {
  const revisions: string[] = [];
  const server = createServer((req, res) => {
    const match = /^\/test\/tiny\/resolve\/([^/]+)\/tiny-q8\.gguf$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (!match) return void res.writeHead(404).end();
    revisions.push(decodeURIComponent(match[1] ?? ''));
    res.writeHead(200, {
      'content-length': String(bytes.length),
      ...(advertised ? { 'x-linked-etag': `"${advertised}"`, 'x-linked-size': String(bytes.length) } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, revisions };
}

const hardware: HardwareInfo = {
  accelerator: 'cpu',
  gpuNames: [],
  vramTotalBytes: 0,
  vramFreeBytes: 0,
  unifiedMemory: false,
  ramTotalBytes: 64 * 1024 ** 2,
  ramFreeBytes: 64 * 1024 ** 2,
  cpuCores: 2,
  cpuMathCores: 2,
  memoryBytes: 64 * 1024 ** 2,
  memoryKind: 'ram',
  memoryOverridden: false,
  recommendedThreads: 1,
};

function catalogWith(entry: Partial<CatalogEntry>, bytes: number) {
  return {
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
        quant: 'Q8_0',
        file: 'tiny-q8.gguf',
        source: 'hf:test/tiny/tiny-q8.gguf',
        bytes,
        qualityRank: 90,
        note: 'fits',
        ...entry,
      },
    ],
  };
}

async function modelsDir() {
  const dir = await tempDir();
  onTestFinished(() => dir.cleanup());
  return dir.path;
}

describe('catalog pins (revision and sha256)', () => {
  it('downloads a pinned entry from its commit and checks its sha256', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    const server = await hub(model, sha(model));
    const dir = await modelsDir();
    const resolved = await resolveModel({
      modelsDir: dir,
      hardware,
      catalog: catalogWith({ revision: REVISION, sha256: sha(model) }, model.length),
      endpoint: server.endpoint,
      sequences: 2,
      contextPerSequence: 512,
    });
    expect(sha(await readFile(resolved.path))).toBe(sha(model));
    expect(new Set(server.revisions)).toEqual(new Set([REVISION]));
  });

  it('a file that hashes otherwise than its pin fails with GB_ERR_MODEL_CHECKSUM and is deleted', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    // The server publishes no checksum (a mirror), so only the download itself can tell.
    const server = await hub(model, undefined);
    const dir = await modelsDir();
    const failure = await resolveModel({
      modelsDir: dir,
      hardware,
      catalog: catalogWith({ revision: REVISION, sha256: 'b'.repeat(64) }, model.length),
      endpoint: server.endpoint,
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GembatchError);
    expect((failure as GembatchError).code).toBe('GB_ERR_MODEL_CHECKSUM');
    expect((failure as GembatchError).retryable).toBe(false);
    expect(server.revisions).toContain(REVISION);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a server publishing another sha256 than the pin fails before downloading anything', async () => {
    const model = await readFile(await ensureTestModel('tiny'));
    const server = await hub(model, 'c'.repeat(64));
    const dir = await modelsDir();
    const failure = await resolveModel({
      modelsDir: dir,
      hardware,
      catalog: catalogWith({ sha256: sha(model) }, model.length),
      endpoint: server.endpoint,
    }).catch((error: unknown) => error);
    expect((failure as GembatchError).code).toBe('GB_ERR_MODEL_CHECKSUM');
    expect((failure as GembatchError).message).toMatch(/nothing was downloaded/);
    expect(server.revisions).toEqual(['main']);
    expect(existsSync(path.join(dir, 'tiny-q8.gguf'))).toBe(false);
  });

  it('pins in the catalog are well-formed where set (a 40-hex commit, a 64-hex sha256)', () => {
    for (const entry of [...GEMMA4_12B_CATALOG.entries, GEMMA4_12B_CATALOG.projector]) {
      if (entry.revision !== undefined) expect(entry.revision, entry.quant).toMatch(/^[0-9a-f]{40}$/);
      if (entry.sha256 !== undefined) expect(entry.sha256, entry.quant).toMatch(/^[0-9a-f]{64}$/);
    }
  });
});
