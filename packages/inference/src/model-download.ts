import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { GembatchError, errorMessage } from '@gembatch/contracts';
import { fetchFollowingRedirects, isRedirect, redirectTarget } from './fetch-following-redirects.ts';

/** Bytes downloaded so far of a file's total (0 when the server does not say). */
export interface DownloadProgress {
  downloadedBytes: number;
  totalBytes: number;
}

export interface DownloadFileOptions {
  url: string;
  /** Final path; the download goes to `<destination>.partial` until verified. */
  destination: string;
  /**
   * sha256 the file must have (a pin): a server publishing another one fails at once, and a file
   * that hashes otherwise is deleted; both with `GB_ERR_MODEL_CHECKSUM`. Defaults to the one the
   * server publishes (Hugging Face's `X-Linked-Etag`), if any.
   */
  expectedSha256?: string;
  /** Extra request headers (authorization). Sent to the URL's origin only: never to another host a redirect names. Defaults to none. */
  headers?: Record<string, string>;
  /** Called as bytes arrive (also once with the bytes resumed from an earlier attempt). Defaults to none. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Stops the download, keeping the partial file for a later resume. */
  signal?: AbortSignal;
  /**
   * The URL to fetch the bytes from once the server has named the commit `url` resolves to (the
   * Hub's `X-Repo-Commit`), so a branch that moves mid-download cannot mix two versions. Defaults to `url`.
   */
  urlAtCommit?: (commit: string) => string;
}

export interface DownloadedFile {
  path: string;
  bytes: number;
  sha256: string;
  /** Whether bytes from an earlier interrupted attempt were reused. */
  resumed: boolean;
  /** Whether the file was already there, verified, and nothing was fetched. */
  cached: boolean;
  /** The repository commit the server said `url` resolves to (`X-Repo-Commit`); absent when it named none or nothing was fetched. */
  commit?: string;
}

interface RemoteMeta {
  size: number | undefined;
  sha256: string | undefined;
  commit: string | undefined;
}

const SHA256 = /^"?([0-9a-f]{64})"?$/i;
const COMMIT = /^[0-9a-f]{40}$/i;

/** What a partial download was for, so a changed remote file is never resumed into. */
interface PartialRecord {
  url: string;
  sha256: string | undefined;
  size: number | undefined;
}

/**
 * Downloads a file with resume and checksum: bytes go to `<destination>.partial`, an interrupted
 * download continues with an HTTP range request, and the finished file must match the expected
 * (or server-published) sha256 and size before it is renamed into place. A verified file is
 * remembered in `<destination>.sha256`, so the next call returns at once.
 */
export async function downloadFile(options: DownloadFileOptions): Promise<DownloadedFile> {
  const { destination } = options;
  await mkdir(path.dirname(destination), { recursive: true });
  const cached = await verifiedCopy(destination, options.expectedSha256);
  if (cached) return cached;

  const meta = await probe(options);
  const pinned = options.expectedSha256?.toLowerCase();
  if (pinned !== undefined && meta.sha256 !== undefined && meta.sha256.toLowerCase() !== pinned) {
    throw new GembatchError(
      'GB_ERR_MODEL_CHECKSUM',
      `${path.basename(destination)}: the server publishes sha256 ${meta.sha256.toLowerCase()}, the pinned or locked sha256 is ${pinned}; nothing was downloaded`,
    );
  }
  const expected = (pinned ?? meta.sha256)?.toLowerCase();
  const url = meta.commit !== undefined && options.urlAtCommit ? options.urlAtCommit(meta.commit) : options.url;
  const partial = `${destination}.partial`;
  const recordPath = `${partial}.json`;
  const record: PartialRecord = { url, sha256: expected, size: meta.size };
  let offset = await sizeOf(partial);
  if (offset > 0 && JSON.stringify(await readRecord(recordPath)) !== JSON.stringify(record)) offset = 0;
  if (meta.size !== undefined && offset > meta.size) offset = 0;
  await writeFile(recordPath, JSON.stringify(record));

  let hash = createHash('sha256');
  if (offset > 0) await hashFile(partial, hash);
  else await rm(partial, { force: true });
  let downloaded = offset;
  const total = meta.size ?? 0;
  options.onProgress?.({ downloadedBytes: downloaded, totalBytes: total });

  const resumed = offset > 0;
  if (meta.size === undefined || offset < meta.size) {
    const response = await request({ ...options, url }, offset > 0 ? { range: `bytes=${offset}-` } : {});
    if (offset > 0 && response.status !== 206) {
      // The server ignored the range: start over.
      offset = 0;
      downloaded = 0;
      hash = createHash('sha256');
    }
    await streamTo(partial, offset > 0 ? 'a' : 'w', response, options, (chunk) => {
      hash.update(chunk);
      downloaded += chunk.length;
      options.onProgress?.({ downloadedBytes: downloaded, totalBytes: total });
    });
  }
  const done = await finish(
    destination,
    partial,
    recordPath,
    hash.digest('hex'),
    downloaded,
    expected,
    meta.size,
    resumed && offset > 0,
  );
  return meta.commit !== undefined ? { ...done, commit: meta.commit } : done;
}

async function finish(
  destination: string,
  partial: string,
  recordPath: string,
  sha256: string,
  bytes: number,
  expected: string | undefined,
  size: number | undefined,
  resumed: boolean,
): Promise<DownloadedFile> {
  if ((size !== undefined && bytes !== size) || (expected !== undefined && sha256 !== expected)) {
    await rm(partial, { force: true });
    await rm(recordPath, { force: true });
    const sizeWrong = size !== undefined && bytes !== size;
    throw new GembatchError(
      sizeWrong ? 'GB_ERR_MODEL_LOAD' : 'GB_ERR_MODEL_CHECKSUM',
      `${path.basename(destination)} failed verification: ${sizeWrong ? `${bytes} bytes instead of ${size}` : `sha256 ${sha256} instead of ${expected}`}; the partial download was deleted`,
    );
  }
  await rename(partial, destination);
  await rm(recordPath, { force: true });
  await writeFile(`${destination}.sha256`, `${sha256}\n`);
  return { path: destination, bytes, sha256, resumed, cached: false };
}

/** A file already downloaded and verified (its `.sha256` sidecar matches what is expected). */
async function verifiedCopy(destination: string, expected: string | undefined): Promise<DownloadedFile | undefined> {
  const bytes = await sizeOf(destination);
  if (bytes === 0) return undefined;
  const recorded = (await readFile(`${destination}.sha256`, 'utf8').catch(() => '')).trim().toLowerCase();
  if (!SHA256.test(recorded) || (expected !== undefined && recorded !== expected.toLowerCase())) return undefined;
  return { path: destination, bytes, sha256: recorded, resumed: false, cached: true };
}

/**
 * Size and sha256 the server publishes, read from a HEAD without following Hugging Face's CDN
 * redirect (the Hub's own answer carries them). Redirects it does follow lose their credentials
 * on the way to another origin.
 */
async function probe(
  options: DownloadFileOptions,
  url = options.url,
  headers = options.headers ?? {},
  hops = 0,
): Promise<RemoteMeta> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'HEAD',
      redirect: 'manual',
      headers,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    throw networkError(options, error);
  }
  const linkedSize = Number(response.headers.get('x-linked-size') ?? Number.NaN);
  const linkedSha = SHA256.exec(response.headers.get('x-linked-etag') ?? '')?.[1];
  const repoCommit = response.headers.get('x-repo-commit') ?? '';
  const commit = COMMIT.test(repoCommit) ? repoCommit.toLowerCase() : undefined;
  if (response.status >= 300 && response.status < 400) {
    if (Number.isFinite(linkedSize) && linkedSha) return { size: linkedSize, sha256: linkedSha, commit };
    if (!isRedirect(response)) throw new GembatchError('GB_ERR_MODEL_LOAD', `${options.url} redirected nowhere`);
    // Why 10: the same bound as fetchFollowingRedirects (the Hub needs one or two hops).
    if (hops >= 10)
      throw new GembatchError('GB_ERR_MODEL_LOAD', `${options.url}: too many redirects`, { retryable: true });
    const next = redirectTarget(response, url, headers);
    return probe(options, next.url, next.headers, hops + 1);
  }
  if (!response.ok) throw httpError(options, response.status);
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  const etagSha = SHA256.exec(response.headers.get('etag') ?? '')?.[1];
  return {
    size: Number.isFinite(linkedSize) ? linkedSize : Number.isFinite(length) ? length : undefined,
    sha256: linkedSha ?? etagSha,
    commit,
  };
}

async function request(options: DownloadFileOptions, extra: Record<string, string>): Promise<Response> {
  let response: Response;
  try {
    response = await fetchFollowingRedirects(options.url, {
      headers: { ...options.headers, ...extra },
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    throw networkError(options, error);
  }
  if (!response.ok || !response.body) throw httpError(options, response.status);
  return response;
}

async function streamTo(
  file: string,
  flags: 'a' | 'w',
  response: Response,
  options: DownloadFileOptions,
  onChunk: (chunk: Uint8Array) => void,
): Promise<void> {
  const out = createWriteStream(file, { flags });
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      onChunk(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
    }
  } catch (error) {
    throw networkError(options, error);
  } finally {
    out.end();
    await once(out, 'close').catch(() => undefined);
  }
}

function networkError(options: DownloadFileOptions, error: unknown): GembatchError {
  if (options.signal?.aborted)
    return new GembatchError(
      'GB_ERR_CANCELLED',
      `download of ${path.basename(options.destination)} was stopped; run it again to resume`,
      { cause: error },
    );
  return new GembatchError(
    'GB_ERR_MODEL_LOAD',
    `download of ${path.basename(options.destination)} was interrupted (${errorMessage(error)}); run it again to resume`,
    { cause: error, retryable: true },
  );
}

function httpError(options: DownloadFileOptions, status: number): GembatchError {
  const hint =
    status === 401 || status === 403 ? ' (gated or private: set HF_TOKEN)' : status === 404 ? ' (no such file)' : '';
  return new GembatchError(
    'GB_ERR_MODEL_LOAD',
    `download of ${path.basename(options.destination)} failed: HTTP ${status}${hint}`,
    { retryable: status >= 500 },
  );
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function readRecord(file: string): Promise<PartialRecord | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as PartialRecord;
  } catch {
    return undefined;
  }
}

/** Feeds a whole file into `hash` (streamed: model files are GBs). */
export async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}
