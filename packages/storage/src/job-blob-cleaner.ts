import { getJson } from './json-blobs.ts';
import type { BlobReferences } from './blob-references.ts';
import type { BlobStore } from './blob-store.ts';

/**
 * The blob side of job deletion (`deleteJob`'s `JobBlobCleaner`): inline texts by reference,
 * derived blobs (documents, media, chunk texts, results) unless a record references them.
 */
export class JobBlobCleaner {
  readonly #blobs: BlobStore;
  readonly #refs: BlobReferences;

  constructor(blobs: BlobStore, refs: BlobReferences) {
    this.#blobs = blobs;
    this.#refs = refs;
  }

  releaseJob(jobId: string, sha256: string): Promise<boolean> {
    return this.#refs.releaseJob(jobId, sha256);
  }

  inputsOf(jobId: string): Promise<string[]> {
    return this.#refs.textsOf(jobId);
  }

  collectIfUnreferenced(sha256: string): Promise<boolean> {
    return this.#refs.collectIfUnreferenced(sha256);
  }

  /** The media blobs an extracted document lists; none when it is gone or not a document. */
  async mediaOf(documentSha256: string): Promise<string[]> {
    const document = await getJson<{ media?: Array<{ sha256?: unknown }> }>(this.#blobs, documentSha256).catch(
      () => undefined,
    );
    return (document?.media ?? []).flatMap((part) => (typeof part.sha256 === 'string' ? [part.sha256] : []));
  }
}
