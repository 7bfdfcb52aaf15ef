import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GEMMA4_12B_CATALOG } from '@gembatch/inference';
import { tempDir } from '@gembatch/testing';
import { runModelsList, runModelsPull } from '../src/commands/models.ts';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Collects what a command writes. */
function sink() {
  const chunks: string[] = [];
  const out = { write: (chunk: string) => chunks.push(chunk) > 0 } as unknown as NodeJS.WritableStream;
  return { out, text: () => chunks.join(''), clear: () => void chunks.splice(0) };
}

/**
 * A Hub stand-in serving `bytes` as `<repo>/resolve/<revision>/<file>` with the Hub's checksum
 * headers (`X-Linked-Etag`, `X-Linked-Size`); it records the revisions asked for.
 */
async function hub(repo: string, file: string, bytes: Buffer) {
  const revisions: string[] = [];
  const server = createServer((req, res) => {
    const match = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (!match || match[1] !== repo || match[3] !== file) return void res.writeHead(404).end();
    revisions.push(decodeURIComponent(match[2] ?? ''));
    res.writeHead(200, { 'content-length': String(bytes.length), 'x-linked-etag': `"${sha(bytes)}"`, 'x-linked-size': String(bytes.length) });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, revisions };
}

describe('gembatch models list | pull', () => {
  it('list prints the catalog with what fits the given memory and the choice', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const output = sink();
    expect(await runModelsList(['--json', '--gpu', 'cpu', '--vram', '16GiB', '--models-dir', dir.path], output.out, {})).toBe(0);
    const report = JSON.parse(output.text()) as { choice: { quant: string }; rows: Array<{ quant: string; fit: string; downloaded: boolean }> };
    expect(report.choice.quant).toBe('Q8_0');
    expect(report.rows.find((r) => r.quant === 'BF16')?.fit).toBe('no');
    output.clear();
    expect(await runModelsList(['--gpu', 'cpu', '--vram', '16GiB', '--models-dir', dir.path], output.out, {})).toBe(0);
    expect(output.text()).toMatch(/\*Q8_0/);
    expect(await runModelsList(['--bogus'], output.out, {})).toBe(1);
  });

  it('pull downloads a catalog quant from its pinned revision with progress and checksum, then finds it verified', async () => {
    const entry = GEMMA4_12B_CATALOG.entries.find((e) => e.quant === 'Q4_K_M');
    const { repo, file } = /^hf:(?<repo>[^/]+\/[^/]+)\/(?<file>.+)$/.exec(entry?.source ?? '')?.groups ?? {};
    const bytes = randomBytes(50_000);
    const server = await hub(repo ?? '', file ?? '', bytes);
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const output = sink();
    expect(await runModelsPull(['q4_k_m', '--models-dir', dir.path, '--endpoint', server.endpoint], output.out, {}), output.text()).toBe(0);
    expect(output.text()).toMatch(/100%/);
    expect(output.text()).toContain(sha(bytes));
    expect(new Set(server.revisions)).toEqual(new Set([entry?.revision ?? 'main']));
    output.clear();
    // GEMBATCH_MODELS_DIR is read when --models-dir is not given.
    expect(await runModelsPull(['Q4_K_M', '--endpoint', server.endpoint], output.out, { GEMBATCH_MODELS_DIR: dir.path })).toBe(0);
    expect(output.text()).toMatch(/already downloaded and verified/);
    expect(await runModelsPull(['Q3_XS', '--models-dir', dir.path], output.out, {})).toBe(1);
  });
});
