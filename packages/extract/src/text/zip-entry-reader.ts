import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import { GembatchError } from '@gembatch/contracts';

const inflate = promisify(inflateRaw);

// Why these numbers: the ZIP format's fixed record sizes and signatures (APPNOTE.TXT 4.3).
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;
const END_RECORD_BYTES = 22;
const MAX_COMMENT_BYTES = 0xffff;
// Why 16 MiB: a central directory lists names and offsets; even 100,000 entries fit in a few megabytes.
const MAX_CENTRAL_DIRECTORY_BYTES = 16 * 1024 * 1024;
// Why 16 MiB: small entries may compress very well (a short XML of repeated tags); the ratio guard
// only matters once an entry is large enough to hurt.
const RATIO_FREE_BYTES = 16 * 1024 * 1024;

/** Options of `readZipEntry`. */
export interface ReadZipEntryOptions {
  /** Most bytes the entry may inflate to (`GB_ERR_PAYLOAD_TOO_LARGE`). */
  maxBytes: number;
  /**
   * Most inflated bytes per compressed byte once an entry passes 16 MiB: the zip-bomb guard, which
   * stops a bomb after a bounded amount of work however high `maxBytes` is. Defaults to none.
   */
  maxRatio?: number;
}

function damaged(what: string): GembatchError {
  return new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', `the ZIP container is damaged: ${what}`);
}

/**
 * Reads one entry of a ZIP file (stored or deflated) by name, without reading the rest of the
 * archive; `undefined` when there is no such entry. An entry that inflates beyond `maxBytes`, or
 * beyond `maxRatio` times its compressed size (a zip bomb), fails with the non-retryable
 * `GB_ERR_PAYLOAD_TOO_LARGE` as soon as inflating passes the limit; ZIP64 archives and damaged
 * directories fail with `GB_ERR_UNSUPPORTED_MEDIA`.
 */
export async function readZipEntry(
  path: string,
  name: string,
  limits: number | ReadZipEntryOptions,
): Promise<Buffer | undefined> {
  const { maxBytes, maxRatio } = typeof limits === 'number' ? { maxBytes: limits, maxRatio: undefined } : limits;
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const read = async (position: number, length: number): Promise<Buffer> => {
      if (position < 0 || length < 0 || position + length > size) throw damaged('a record points outside the file');
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      if (bytesRead !== length) throw damaged('the file ended early');
      return buffer;
    };
    const tailLength = Math.min(size, END_RECORD_BYTES + MAX_COMMENT_BYTES);
    const tail = await read(size - tailLength, tailLength);
    let end = -1;
    for (let i = tail.length - END_RECORD_BYTES; i >= 0; i--) {
      if (tail.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
        end = i;
        break;
      }
    }
    if (end < 0) throw damaged('no end-of-central-directory record');
    const entries = tail.readUInt16LE(end + 10);
    const directorySize = tail.readUInt32LE(end + 12);
    const directoryOffset = tail.readUInt32LE(end + 16);
    if (entries === 0xffff || directoryOffset === 0xffffffff)
      throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', 'ZIP64 archives are not supported');
    if (directorySize > MAX_CENTRAL_DIRECTORY_BYTES) throw damaged('the central directory is implausibly large');
    const directory = await read(directoryOffset, directorySize);
    for (let offset = 0, index = 0; index < entries; index++) {
      if (offset + 46 > directory.length || directory.readUInt32LE(offset) !== CENTRAL_DIRECTORY_ENTRY)
        throw damaged('a central directory entry is broken');
      const method = directory.readUInt16LE(offset + 10);
      const compressedSize = directory.readUInt32LE(offset + 20);
      const nameLength = directory.readUInt16LE(offset + 28);
      const extraLength = directory.readUInt16LE(offset + 30);
      const commentLength = directory.readUInt16LE(offset + 32);
      const localOffset = directory.readUInt32LE(offset + 42);
      const entryName = directory.toString('utf8', offset + 46, offset + 46 + nameLength);
      offset += 46 + nameLength + extraLength + commentLength;
      if (entryName !== name) continue;
      const local = await read(localOffset, 30);
      if (local.readUInt32LE(0) !== LOCAL_FILE_HEADER) throw damaged('a local file header is missing');
      const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      const data = await read(dataOffset, compressedSize);
      if (method === 0) {
        if (data.length > maxBytes) throw tooLarge(name, maxBytes);
        return data;
      }
      if (method !== 8)
        throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', `ZIP compression method ${method} is not supported`);
      const ratioCap =
        maxRatio === undefined ? Number.POSITIVE_INFINITY : Math.max(RATIO_FREE_BYTES, compressedSize * maxRatio);
      const cap = Math.min(maxBytes, ratioCap);
      try {
        return await inflate(data, { maxOutputLength: cap });
      } catch (error) {
        if ((error as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE') throw damaged(`${name} does not inflate`);
        if (cap < maxBytes) {
          throw new GembatchError(
            'GB_ERR_PAYLOAD_TOO_LARGE',
            `${name} inflates to more than ${maxRatio} times its compressed size of ${compressedSize} bytes (a zip bomb)`,
            {
              details: { compressedBytes: compressedSize, maxRatio, inflatedLimitBytes: cap },
            },
          );
        }
        throw tooLarge(name, maxBytes);
      }
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

function tooLarge(name: string, maxBytes: number): GembatchError {
  return new GembatchError('GB_ERR_PAYLOAD_TOO_LARGE', `${name} inflates beyond the limit of ${maxBytes} bytes`, {
    details: { inflatedLimitBytes: maxBytes },
  });
}
