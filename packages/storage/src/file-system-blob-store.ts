import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GembatchError, SHA256_PATTERN } from '@gembatch/contracts';
import type { BlobEntry, BlobPutOptions, BlobPutResult, BlobStore } from './blob-store.ts';
import { HashingSizeLimiter, payloadTooLarge } from './hashing-size-limiter.ts';

export interface FileSystemBlobStoreOptions {
  /**
   * The blob directory, by convention `<GEMBATCH_DATA_DIR>/blobs`. Blobs live in
   * `<root>/<first two hex chars>/<sha256>`, writes in progress in `<root>/.tmp` (same filesystem,
   * so the final rename is atomic). Every process that shares blobs (API, workers) uses the same root.
   */
  root: string;
}

/**
 * The filesystem `BlobStore`: each put streams into a temp file while hashing, flushes it to disk,
 * then renames it to its content address. Renames are atomic, so readers never see half a blob
 * and concurrent puts of the same content both succeed with one copy left.
 */
export class FileSystemBlobStore implements BlobStore {
  readonly root: string;
  readonly #tmpDir: string;
  /**
   * Directories this store has created or found (`.tmp` and the 256 fan-out folders): a put
   * skips their `mkdir`, two syscalls on the thread pool per blob (every result, every inline
   * text). Nothing removes them; a put that finds one gone anyway forgets them all and recreates
   * them on the spot.
   */
  readonly #knownDirs = new Set<string>();

  constructor(options: FileSystemBlobStoreOptions) {
    this.root = resolve(options.root);
    this.#tmpDir = join(this.root, '.tmp');
  }

  async put(source: Readable | Buffer, options: BlobPutOptions = {}): Promise<BlobPutResult> {
    try {
      return await this.#put(source, options);
    } catch (error) {
      // A folder went away behind this store's back (the store forgot them all): a buffer can be written again.
      if (!isMissing(error) || !Buffer.isBuffer(source)) throw error;
      return this.#put(source, options);
    }
  }

  async #put(source: Readable | Buffer, options: BlobPutOptions): Promise<BlobPutResult> {
    await this.#ensureDir(this.#tmpDir);
    const tmp = join(this.#tmpDir, `${randomUUID()}.part`);
    try {
      const { sha256, bytes } = Buffer.isBuffer(source)
        ? await writeBuffer(tmp, source, options)
        : await writeStream(tmp, source, options);
      await options.beforeCommit?.(sha256, bytes);
      const target = this.#blobPath(sha256);
      const dir = join(this.root, sha256.slice(0, 2));
      await this.#ensureDir(dir);
      await rename(tmp, target).catch(async (error: unknown) => {
        if (!isMissing(error)) throw error;
        // The folder went away behind this store's back: make it again, once.
        this.#knownDirs.clear();
        await this.#ensureDir(dir);
        await rename(tmp, target);
      });
      await syncDirectory(dir);
      return { sha256, bytes };
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      if (isMissing(error)) this.#knownDirs.clear();
      if (error instanceof Error && error.name === 'AbortError')
        throw new GembatchError('GB_ERR_CANCELLED', 'the blob write was aborted', { cause: error });
      throw error;
    }
  }

  async #ensureDir(dir: string): Promise<void> {
    if (this.#knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.#knownDirs.add(dir);
  }

  async get(sha256: string): Promise<Readable> {
    const handle = await open(this.#existingPath(sha256), 'r').catch((error: unknown) => rethrowMissing(error, sha256));
    return handle.createReadStream();
  }

  async read(sha256: string): Promise<Buffer> {
    return readFile(this.#existingPath(sha256)).catch((error: unknown) => rethrowMissing(error, sha256));
  }

  async path(sha256: string): Promise<string> {
    const path = this.#existingPath(sha256);
    await stat(path).catch((error: unknown) => rethrowMissing(error, sha256));
    return path;
  }

  async has(sha256: string): Promise<boolean> {
    return SHA256_PATTERN.test(sha256) && (await falseIfMissing(stat(this.#blobPath(sha256))));
  }

  async bytes(sha256: string): Promise<number> {
    const info = await stat(this.#existingPath(sha256)).catch((error: unknown) => rethrowMissing(error, sha256));
    return info.size;
  }

  async delete(sha256: string): Promise<boolean> {
    return SHA256_PATTERN.test(sha256) && (await falseIfMissing(unlink(this.#blobPath(sha256))));
  }

  async *list(): AsyncIterable<BlobEntry> {
    for (const dir of await readdirOrEmpty(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(dir)) continue;
      for (const name of await readdirOrEmpty(join(this.root, dir))) {
        if (!SHA256_PATTERN.test(name) || !name.startsWith(dir)) continue;
        const info = await stat(join(this.root, dir, name)).catch((error: unknown) =>
          isMissing(error) ? undefined : Promise.reject(error),
        );
        if (info) yield { sha256: name, bytes: info.size, modifiedMs: info.mtimeMs };
      }
    }
  }

  async removeStalePartials(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of await readdirOrEmpty(this.#tmpDir)) {
      if (!name.endsWith('.part')) continue;
      const path = join(this.#tmpDir, name);
      const info = await stat(path).catch(() => undefined);
      // A write in progress touches its file with every chunk, so only dead ones are this old.
      if (!info || info.mtimeMs > cutoff) continue;
      if (
        await unlink(path).then(
          () => true,
          () => false,
        )
      )
        removed += 1;
    }
    return removed;
  }

  #blobPath(sha256: string): string {
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  /** The path of a well-formed address; a malformed one (never stored, maybe hostile) is not found. */
  #existingPath(sha256: string): string {
    if (!SHA256_PATTERN.test(sha256)) throw notFound(sha256);
    return this.#blobPath(sha256);
  }
}

/** Streams `source` into `path` while hashing and counting it, then flushes the file to disk. */
async function writeStream(path: string, source: Readable, options: BlobPutOptions): Promise<BlobPutResult> {
  const limiter = new HashingSizeLimiter(options.maxBytes);
  await pipeline(
    source,
    limiter,
    createWriteStream(path, { flush: true }),
    options.signal ? { signal: options.signal } : {},
  );
  return { sha256: limiter.digest(), bytes: limiter.bytes };
}

/**
 * Writes a buffer (an inline text, a result) in one call and flushes it: the same file, hash and
 * limit as {@link writeStream}, without a three-stream pipeline for a few hundred bytes (every
 * job stores one or two such blobs; the pipeline was most of their CPU).
 */
async function writeBuffer(path: string, data: Buffer, options: BlobPutOptions): Promise<BlobPutResult> {
  if (options.maxBytes !== undefined && data.length > options.maxBytes) throw payloadTooLarge(options.maxBytes);
  if (options.signal?.aborted) throw new GembatchError('GB_ERR_CANCELLED', 'the blob write was aborted');
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { sha256: createHash('sha256').update(data).digest('hex'), bytes: data.length };
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

/** `true` once `operation` succeeds, `false` when the file it touches does not exist; other errors propagate. */
async function falseIfMissing(operation: Promise<unknown>): Promise<boolean> {
  try {
    await operation;
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === 'ENOENT';
}

function notFound(sha256: string): GembatchError {
  return new GembatchError('GB_ERR_FILE_NOT_FOUND', `no blob with sha256 ${sha256.slice(0, 64)}`);
}

function rethrowMissing(error: unknown, sha256: string): never {
  if (isMissing(error)) throw notFound(sha256);
  throw error;
}

/** Makes a rename durable: the directory entry reaches the disk, not only the file's bytes. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
