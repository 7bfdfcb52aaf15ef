import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from '@gembatch/testing';
import { downloadFile, resolveHfQuant } from '../src/index.ts';

const TOKEN = 'hf_secret_token_0123456789';

interface Hit {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

/** A loopback HTTP server on `host` that records every request and answers with `handle`. */
async function server(host: string, handle: (req: IncomingMessage, res: ServerResponse, base: string) => void) {
  const hits: Hit[] = [];
  let base = '';
  const http = createServer((req, res) => {
    hits.push({
      method: req.method ?? 'GET',
      path: new URL(req.url ?? '/', 'http://x').pathname,
      headers: req.headers,
    });
    handle(req, res, base);
  });
  await new Promise<void>((resolve) => http.listen(0, host, resolve));
  onTestFinished(() => new Promise<void>((resolve) => http.close(() => resolve())));
  base = `http://${host}:${(http.address() as AddressInfo).port}`;
  return { base, hits };
}

/**
 * The Hub on 127.0.0.1 and its "CDN" on 127.0.0.2 (another host, another port): the Hub redirects
 * a file to a same-origin revision path first (credentials must follow that one), then to the
 * CDN (they must not). `linked`: whether the Hub's HEAD carries X-Linked-* (the real Hub does; a
 * mirror may not, and then the HEAD follows the redirects too).
 */
async function hubAndCdn(bytes: Buffer, linked: boolean) {
  const sha = createHash('sha256').update(bytes).digest('hex');
  const cdn = await server('127.0.0.2', (req, res) => {
    res.writeHead(200, { 'content-length': String(bytes.length), etag: `"${sha}"` });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  const hub = await server('127.0.0.1', (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/org/repo/resolve/main/model.gguf')
      return void res.writeHead(307, { location: '/org/repo/resolve/0123abc/model.gguf' }).end();
    if (url.pathname === '/org/repo/resolve/0123abc/model.gguf') {
      return void res
        .writeHead(302, {
          location: `${cdn.base}/blobs/${sha}`,
          ...(linked ? { 'x-linked-etag': `"${sha}"`, 'x-linked-size': String(bytes.length) } : {}),
        })
        .end();
    }
    if (url.pathname === '/api/models/org/repo/tree/main')
      return void res.writeHead(302, { location: `${cdn.base}/listing` }).end();
    res.writeHead(404).end();
  });
  return { hub, cdn, sha };
}

describe('downloads never send the token to another host', () => {
  for (const linked of [true, false]) {
    it(`drops Authorization on the redirect to the CDN, keeps it on same-origin hops (HEAD ${linked ? 'answered by the Hub' : 'followed to the CDN'})`, async () => {
      const bytes = randomBytes(50_000);
      const { hub, cdn, sha } = await hubAndCdn(bytes, linked);
      const dir = await tempDir();
      onTestFinished(() => dir.cleanup());
      const destination = path.join(dir.path, 'model.gguf');
      const done = await downloadFile({
        url: `${hub.base}/org/repo/resolve/main/model.gguf`,
        destination,
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      expect(done.sha256).toBe(sha);
      expect(await readFile(destination)).toEqual(bytes);

      // The Hub saw the token on every request, HEAD and GET, both hops.
      expect(hub.hits.length).toBeGreaterThanOrEqual(4);
      for (const hit of hub.hits)
        expect(hit.headers.authorization, `${hit.method} ${hit.path}`).toBe(`Bearer ${TOKEN}`);
      // The CDN served the bytes and never saw it.
      expect(cdn.hits.some((hit) => hit.method === 'GET')).toBe(true);
      expect(cdn.hits.some((hit) => hit.method === 'HEAD')).toBe(!linked);
      for (const hit of cdn.hits) {
        expect(hit.headers.authorization, `${hit.method} ${hit.path}`).toBeUndefined();
        expect(JSON.stringify(hit.headers)).not.toContain(TOKEN);
      }
    });
  }

  it('drops it on a cross-host redirect of the repository listing too', async () => {
    const { hub, cdn } = await hubAndCdn(Buffer.from('x'), true);
    await expect(resolveHfQuant('org/repo', 'Q8_0', 'main', { endpoint: hub.base, token: TOKEN })).rejects.toThrow();
    expect(hub.hits[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(cdn.hits.map((hit) => hit.path)).toEqual(['/listing']);
    expect(cdn.hits[0]?.headers.authorization).toBeUndefined();
  });
});

describe("node-llama-cpp's downloader", () => {
  it('is not used: every model download goes through downloadFile, whose redirects keep the token home', async () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const offenders: string[] = [];
    for (const top of ['packages', 'services']) {
      for (const pkg of await readdir(path.join(root, top))) {
        const src = path.join(root, top, pkg, 'src');
        const files = await readdir(src, { recursive: true }).catch(() => []);
        for (const entry of files) {
          const file = path.join(src, String(entry));
          if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
          const text = await readFile(file, 'utf8');
          // ipull-based: it would follow redirects with its own header policy.
          if (/\b(createModelDownloader|combineModelDownloaders|resolveModelFile)\b/.test(text))
            offenders.push(path.relative(root, file));
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
