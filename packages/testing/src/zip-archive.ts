import { writeFile } from 'node:fs/promises';
import { crc32, deflateRawSync } from 'node:zlib';
import { littleEndianRecord } from './byte-record.ts';

/** An entry already deflated (raw DEFLATE), with the CRC-32 and size of its inflated bytes. */
export interface DeflatedZipEntry {
  name: string;
  deflated: Buffer;
  crc: number;
  size: number;
}

/**
 * Signatures from PKWARE's APPNOTE (4.3.7 local header, 4.3.12 central directory, 4.3.16 end
 * record); version 2.0 is what DEFLATE needs, and method 8 is DEFLATE.
 */
const ZIP = {
  localHeader: 0x04034b50,
  centralHeader: 0x02014b50,
  endOfDirectory: 0x06054b50,
  version: 20,
  deflate: 8,
} as const;

/** A ZIP of already-deflated entries (no ZIP64, no data descriptors), with their real CRCs and sizes. */
export function zipOfDeflated(entries: readonly DeflatedZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const { name, deflated, crc, size } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const sizes = (at: number) =>
      [
        [at, 4, crc],
        [at + 4, 4, deflated.length],
        [at + 8, 4, size],
      ] as const;
    const local = littleEndianRecord(30, [
      [0, 4, ZIP.localHeader],
      [4, 2, ZIP.version],
      [8, 2, ZIP.deflate],
      ...sizes(14),
      [26, 2, nameBytes.length],
    ]);
    const central = littleEndianRecord(46, [
      [0, 4, ZIP.centralHeader],
      [4, 2, ZIP.version],
      [6, 2, ZIP.version],
      [10, 2, ZIP.deflate],
      ...sizes(16),
      [28, 2, nameBytes.length],
      [42, 4, offset],
    ]);
    locals.push(local, nameBytes, deflated);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + deflated.length;
  }
  const directory = Buffer.concat(centrals);
  const end = littleEndianRecord(22, [
    [0, 4, ZIP.endOfDirectory],
    [8, 2, entries.length],
    [10, 2, entries.length],
    [12, 4, directory.length],
    [16, 4, offset],
  ]);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * Writes a ZIP archive (deflated entries, no ZIP64) from names and contents: the container of
 * DOCX, XLSX and PPTX files.
 */
export async function writeZipFile(path: string, entries: Record<string, string | Buffer>): Promise<string> {
  const deflated = Object.entries(entries).map(([name, content]): DeflatedZipEntry => {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
    return { name, deflated: deflateRawSync(data), crc: crc32(data), size: data.length };
  });
  await writeFile(path, zipOfDeflated(deflated));
  return path;
}
