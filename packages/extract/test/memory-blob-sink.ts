import { createHash } from 'node:crypto';

/** A real content-addressed store in memory: what `putBlob` wrote, by sha256, with its MIME type. */
export class MemoryBlobSink {
  readonly blobs = new Map<string, { bytes: Buffer; mime: string }>();

  /** The `putBlob` to hand to `extractFile`. */
  readonly put = async (bytes: Buffer, mime: string): Promise<string> => {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    this.blobs.set(sha256, { bytes: Buffer.from(bytes), mime });
    return sha256;
  };

  /** The bytes stored under `sha256`; throws when absent, so a test cannot read a blob that was never stored. */
  get(sha256: string): Buffer {
    const blob = this.blobs.get(sha256);
    if (!blob) throw new Error(`no blob ${sha256}`);
    return blob.bytes;
  }
}
