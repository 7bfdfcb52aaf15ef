import type { Readable } from 'node:stream';

/** Options of `BlobStore.put`. */
export interface BlobPutOptions {
  /** Largest accepted size in bytes; more fails with `GB_ERR_PAYLOAD_TOO_LARGE` and nothing is kept. Defaults to no limit. */
  maxBytes?: number;
  /** Aborts the write (`GB_ERR_CANCELLED`); nothing is kept. Defaults to none. */
  signal?: AbortSignal;
  /**
   * Called with the content address once the bytes are hashed and on disk, before the blob becomes
   * visible: a caller registers its reference here (`BlobReferences.acquire`), so a concurrent
   * delete of the same content cannot remove the blob under it. A throw fails the put and keeps
   * nothing. Defaults to none.
   */
  beforeCommit?: (sha256: string, bytes: number) => Promise<void>;
}

/** What `BlobStore.put` stored: the content address and the size. */
export interface BlobPutResult {
  /** Lowercase hex sha256 of the bytes: the blob's address. */
  sha256: string;
  bytes: number;
}

/**
 * Content-addressed storage for uploads, extracted documents and results. A blob's address is
 * the sha256 of its bytes, so the same content is stored once and writes are idempotent.
 * Unknown addresses fail with `GB_ERR_FILE_NOT_FOUND`. The filesystem store fills it today;
 * an S3 store can fill it later (downloading to a local cache in `path`).
 */
export interface BlobStore {
  /** Streams the bytes in while hashing them; the blob appears whole or not at all. */
  put(source: Readable | Buffer, options?: BlobPutOptions): Promise<BlobPutResult>;
  /** A stream of the blob's bytes. */
  get(sha256: string): Promise<Readable>;
  /**
   * The whole blob in memory, for blobs that are read whole anyway (JSON documents, inline texts):
   * a third of `get`'s CPU on small ones, where opening a stream costs more than the bytes.
   */
  read(sha256: string): Promise<Buffer>;
  /** A local file path holding the blob, for tools that need a file (pdftotext, ffmpeg). Read only. */
  path(sha256: string): Promise<string>;
  /** Whether the blob exists. */
  has(sha256: string): Promise<boolean>;
  /** The blob's size in bytes. */
  bytes(sha256: string): Promise<number>;
  /** Removes the blob; resolves `false` when it was not there. */
  delete(sha256: string): Promise<boolean>;
  /** Every stored blob with its size and last write time (ms), for the retention sweep. */
  list(): AsyncIterable<BlobEntry>;
  /** Deletes partial writes (`.part` files of killed uploads) untouched for `olderThanMs`; resolves how many. */
  removeStalePartials(olderThanMs: number): Promise<number>;
}

/** One stored blob as `BlobStore.list` reports it. */
export interface BlobEntry {
  sha256: string;
  bytes: number;
  /** ms since epoch of the last write (a put of the same content renews it). */
  modifiedMs: number;
}
