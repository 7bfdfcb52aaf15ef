import { GembatchError } from '@gembatch/contracts';
import type { BlobPutResult, BlobStore } from './blob-store.ts';

/** Anything with a zod-like `parse` (kept structural so storage does not depend on zod). */
export interface JsonParser<T> {
  parse(value: unknown): T;
}

/** Stores a value as UTF-8 JSON; returns its address. */
export async function putJson(store: BlobStore, value: unknown): Promise<BlobPutResult> {
  return store.put(Buffer.from(JSON.stringify(value), 'utf8'));
}

/**
 * Reads a JSON blob, optionally checked by `parser` (e.g. a zod schema). Unknown address →
 * `GB_ERR_FILE_NOT_FOUND`; bytes that are not JSON → `GB_ERR_INTERNAL` (blobs are written by
 * gembatch itself, so that is a bug or a damaged disk, never user input).
 */
export async function getJson<T = unknown>(store: BlobStore, sha256: string, parser?: JsonParser<T>): Promise<T> {
  const raw = (await store.read(sha256)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new GembatchError('GB_ERR_INTERNAL', `blob ${sha256} is not valid JSON`, {
      cause: error,
      details: { sha256, bytes: raw.length },
    });
  }
  return parser ? parser.parse(value) : (value as T);
}
