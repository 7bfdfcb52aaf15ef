import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { constants as zlibConstants, crc32, deflateRawSync, deflateSync } from 'node:zlib';
import { writeRawPdf } from './raw-pdf.ts';
import { zipOfDeflated } from './zip-archive.ts';

/** Options of `writeImageBombPdf`. */
export interface ImageBombPdfOptions {
  /** Images on the page. Defaults to `6`. */
  images?: number;
  /** Side of each square DeviceRGB image in pixels. Defaults to `9000` (81 Mpx, under the default 100 Mpx cap, 243 MB decoded). */
  side?: number;
}

/**
 * Writes a small PDF whose one page paints several huge, all-black DeviceRGB images stored with
 * FlateDecode. Each image stays under the pixel cap (so nothing refuses it up front), but zeros
 * deflate about 1000:1: with the defaults the file is ~1.5 MB and pdf.js decodes ~1.5 GB of
 * pixels (plus RGBA copies) outside the V8 heap to read its one page. The page has no text, so
 * extraction treats it as scanned and measures or renders its images. Returns `path`.
 */
export async function writeImageBombPdf(path: string, options: ImageBombPdfOptions = {}): Promise<string> {
  const images = options.images ?? 6;
  const side = options.side ?? 9000;
  // One deflated stream serves every image: the same bytes, referenced under several object numbers.
  const pixels = deflateSync(Buffer.alloc(side * side * 3), { level: 9 });
  const objects: Buffer[] = [];
  const add = (body: Buffer | string) => objects.push(Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1'));
  const firstImage = 4;
  const xobjects = Array.from({ length: images }, (_, i) => `/Im${i} ${firstImage + i} 0 R`).join(' ');
  // Each image fills the page, drawn on top of the previous one.
  const content = Array.from({ length: images }, (_, i) => `q 612 0 0 792 0 0 cm /Im${i} Do Q`).join('\n');
  add('<< /Type /Catalog /Pages 2 0 R >>');
  add('<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  add(
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << ${xobjects} >> >> /Contents ${firstImage + images} 0 R >>`,
  );
  for (let i = 0; i < images; i++) {
    add(
      Buffer.concat([
        Buffer.from(
          `<< /Type /XObject /Subtype /Image /Width ${side} /Height ${side} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode /Length ${pixels.length} >>\nstream\n`,
          'latin1',
        ),
        pixels,
        Buffer.from('\nendstream', 'latin1'),
      ]),
    );
  }
  add(`<< /Length ${content.length} >>\nstream\n${content}\nendstream`);
  return writeRawPdf(path, objects);
}

/** Options of `writeZipBombDocx`. */
export interface ZipBombDocxOptions {
  /** Bytes `word/document.xml` inflates to. Defaults to 512 MiB: exactly the old cap, one string longer than V8 allows. */
  inflatedBytes?: number;
}

const MIB = 1024 * 1024;

/**
 * Writes a DOCX (a ZIP with `[Content_Types].xml` and `word/document.xml`) whose document part
 * is an XML prefix followed by spaces: ~0.5 MB on disk for the default 512 MiB inflated, sniffed
 * as DOCX like a real Word file. Built without holding the inflated part in memory: one MiB of
 * spaces is deflated once, ending in a full flush (no back-references across it), and that
 * fragment is repeated. Returns `path`.
 */
export async function writeZipBombDocx(path: string, options: ZipBombDocxOptions = {}): Promise<string> {
  const inflated = options.inflatedBytes ?? 512 * MIB;
  const head = Buffer.from(
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>bomb</w:t></w:r></w:p>',
    'utf8',
  );
  const tail = Buffer.from('</w:body></w:document>', 'utf8');
  const padding = Math.max(0, inflated - head.length - tail.length);
  const chunks = Math.floor(padding / MIB);
  const spaces = Buffer.alloc(MIB, 0x20);
  const rest = spaces.subarray(0, padding - chunks * MIB);
  const fullFlush = { level: 9, finishFlush: zlibConstants.Z_FULL_FLUSH };
  const spacesDeflated = deflateRawSync(spaces, fullFlush);
  const deflated = Buffer.concat([
    deflateRawSync(head, fullFlush),
    ...Array.from({ length: chunks }, () => spacesDeflated),
    deflateRawSync(rest, fullFlush),
    deflateRawSync(tail, { level: 9 }),
  ]);
  let crc = crc32(head);
  for (let i = 0; i < chunks; i++) crc = crc32(spaces, crc);
  crc = crc32(tail, crc32(rest, crc));
  const contentTypes = Buffer.from(
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
    'utf8',
  );
  await mkdir(dirname(path), { recursive: true });
  await writeFile(
    path,
    zipOfDeflated([
      {
        name: '[Content_Types].xml',
        deflated: deflateRawSync(contentTypes),
        crc: crc32(contentTypes),
        size: contentTypes.length,
      },
      { name: 'word/document.xml', deflated, crc, size: head.length + padding + tail.length },
    ]),
  );
  return path;
}
