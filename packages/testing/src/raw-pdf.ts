import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a PDF from its object bodies, numbered 1… in order, object 1 being the catalog: header,
 * objects, cross-reference table and trailer. For files pdf-lib would build too slowly (tens of
 * thousands of pages) or would refuse to build (hostile structures).
 */
export async function writeRawPdf(path: string, objects: readonly Buffer[]): Promise<string> {
  const header = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1');
  const parts: Buffer[] = [header];
  let offset = header.length;
  const offsets: number[] = [];
  objects.forEach((body, index) => {
    offsets.push(offset);
    const framed = Buffer.concat([
      Buffer.from(`${index + 1} 0 obj\n`, 'latin1'),
      body,
      Buffer.from('\nendobj\n', 'latin1'),
    ]);
    parts.push(framed);
    offset += framed.length;
  });
  const xref = [
    'xref',
    `0 ${objects.length + 1}`,
    '0000000000 65535 f ',
    ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n `),
  ].join('\n');
  parts.push(
    Buffer.from(
      `${xref}\ntrailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${offset}\n%%EOF\n`,
      'latin1',
    ),
  );
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, Buffer.concat(parts));
  return path;
}

/** Options of `writeLargeTextPdf`. */
export interface LargeTextPdfOptions {
  pages: number;
  /** Text lines per page. Defaults to `40` (a dense page, ~2.5 KB of text). */
  linesPerPage?: number;
}

const FILLER = 'The tenant agrees to pay the rent on the first day of each month and to keep the premises clean.';

/**
 * Writes a text PDF of any number of pages in well under a second per 10,000 pages: one shared
 * Helvetica (a standard font, not embedded), one uncompressed content stream per page, a flat page
 * tree. Page n (1-based) starts with the line `Page n of N`. Returns `path`.
 */
export async function writeLargeTextPdf(path: string, options: LargeTextPdfOptions): Promise<string> {
  const pages = options.pages;
  const lines = options.linesPerPage ?? 40;
  const objects: Buffer[] = [];
  const add = (body: string) => objects.push(Buffer.from(body, 'latin1'));
  // 1 catalog, 2 page tree, 3 font; then a page and its content stream per page.
  const pageObject = (i: number) => 4 + 2 * i;
  add('<< /Type /Catalog /Pages 2 0 R >>');
  add(
    `<< /Type /Pages /Count ${pages} /Kids [${Array.from({ length: pages }, (_, i) => `${pageObject(i)} 0 R`).join(' ')}] >>`,
  );
  add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>');
  for (let i = 0; i < pages; i++) {
    const text = [
      `Page ${i + 1} of ${pages}`,
      ...Array.from({ length: lines - 1 }, (_, line) => `${line + 1}. ${FILLER}`),
    ];
    // 11 pt text, 14 pt leading, from the top margin down; T* moves to the next line.
    const content = `BT /F1 11 Tf 14 TL 56 740 Td ${text.map((line) => `(${line.replace(/[\\()]/g, (c) => `\\${c}`)}) Tj T*`).join(' ')} ET`;
    add(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents ${pageObject(i) + 1} 0 R >>`,
    );
    add(`<< /Length ${content.length} >>\nstream\n${content}\nendstream`);
  }
  return writeRawPdf(path, objects);
}
