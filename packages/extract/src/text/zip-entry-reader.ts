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

function damaged(what: string): GembatchError {
  return new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', `the ZIP container is damaged: ${what}`);
}

/**
 * Reads one entry of a ZIP file (stored or deflated) by name, without reading the rest of the
 * archive; `undefined` when there is no such entry. An entry that inflates beyond `maxBytes`
 * (a zip bomb) fails with `GB_ERR_PAYLOAD_TOO_LARGE`; ZIP64 archives and damaged directories
 * fail with `GB_ERR_UNSUPPORTED_MEDIA`.
 */
export async function readZipEntry(path: string, name: string, maxBytes: number): Promise<Buffer | undefined> {
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
    if (entries === 0xffff || directoryOffset === 0xffffffff) throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', 'ZIP64 archives are not supported');
    if (directorySize > MAX_CENTRAL_DIRECTORY_BYTES) throw damaged('the central directory is implausibly large');
    const directory = await read(directoryOffset, directorySize);
    for (let offset = 0, index = 0; index < entries; index++) {
      if (offset + 46 > directory.length || directory.readUInt32LE(offset) !== CENTRAL_DIRECTORY_ENTRY) throw damaged('a central directory entry is broken');
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
      if (method !== 8) throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', `ZIP compression method ${method} is not supported`);
      try {
        return await inflate(data, { maxOutputLength: maxBytes });
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(name, maxBytes);
        throw damaged(`${name} does not inflate`);
      }
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

function tooLarge(name: string, maxBytes: number): GembatchError {
  return new GembatchError('GB_ERR_PAYLOAD_TOO_LARGE', `${name} inflates beyond the limit of ${maxBytes} bytes`);
}
