import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';

export interface ModelHub {
  /** `HF_ENDPOINT` / `--endpoint` value for it. */
  endpoint: string;
  /** Revisions asked for, in order (`main`, or a pinned commit). */
  revisions: string[];
}

export interface ModelHubOptions {
  /** Commit every revision resolves to, sent as the Hub's `X-Repo-Commit`. Defaults to none (a mirror that names no commit). */
  commit?: string;
}

/**
 * A Hugging Face Hub stand-in on localhost serving `files` (`<owner>/<repo>/<file>` → bytes) at
 * `/<owner>/<repo>/resolve/<revision>/<file>`, at any revision, with the Hub's checksum headers
 * (`X-Linked-Etag` = sha256, `X-Linked-Size`) and, given a `commit`, `X-Repo-Commit`. `files` is
 * read on every request, so a test can change what upstream serves. Closed when the test finishes.
 */
export async function serveModelHub(
  files: Readonly<Record<string, Buffer>>,
  options: ModelHubOptions = {},
): Promise<ModelHub> {
  const revisions: string[] = [];
  const server = createServer((req, res) => {
    const match = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    const bytes = match ? files[`${match[1]}/${decodeURIComponent(match[3] ?? '')}`] : undefined;
    if (!match || !bytes) return void res.writeHead(404).end();
    revisions.push(decodeURIComponent(match[2] ?? ''));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    res.writeHead(200, {
      'content-length': String(bytes.length),
      'x-linked-etag': `"${sha256}"`,
      'x-linked-size': String(bytes.length),
      ...(options.commit ? { 'x-repo-commit': options.commit } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, revisions };
}
