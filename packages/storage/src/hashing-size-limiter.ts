import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { GembatchError } from '@gembatch/contracts';

/**
 * A pass-through stream that hashes (sha256) and counts the bytes flowing through it, and fails
 * with `GB_ERR_PAYLOAD_TOO_LARGE` as soon as more than `maxBytes` have passed.
 */
export class HashingSizeLimiter extends Transform {
  readonly #hash: Hash = createHash('sha256');
  readonly #maxBytes: number;
  #bytes = 0;

  /** @param maxBytes Largest accepted size. Defaults to no limit. */
  constructor(maxBytes: number = Number.POSITIVE_INFINITY) {
    super();
    this.#maxBytes = maxBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      callback(payloadTooLarge(this.#maxBytes));
      return;
    }
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Lowercase hex sha256 of everything that passed; call once, after the stream finished. */
  digest(): string {
    return this.#hash.digest('hex');
  }
}

/** The error for a blob over its size limit. */
export function payloadTooLarge(maxBytes: number): GembatchError {
  return new GembatchError('GB_ERR_PAYLOAD_TOO_LARGE', `upload is larger than the limit of ${maxBytes} bytes`, {
    details: { maxBytes },
  });
}
