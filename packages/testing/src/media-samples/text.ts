import { writeZipFile } from '../zip-archive.ts';
import { escapeXml } from './xml-text.ts';

/** Options of `writeDocx`. */
export interface DocxOptions {
  paragraphs: readonly string[];
  /** A table after the paragraphs, as rows of cell texts. Defaults to none. */
  table?: ReadonlyArray<readonly string[]>;
  /** Bytes of whitespace added inside the body XML: inflates far beyond the file size (a zip bomb). Defaults to `0`. */
  bodyPadding?: number;
}

/** Writes a minimal valid Word document (DOCX): the content types, package relationships and a body with paragraphs and a table. */
export async function writeDocx(path: string, options: DocxOptions): Promise<string> {
  const paragraph = (text: string) => `<w:p><w:r><w:t xml:space="preserve">${escapeXml(text)}</w:t></w:r></w:p>`;
  const table = options.table
    ? `<w:tbl>${options.table.map((row) => `<w:tr>${row.map((cell) => `<w:tc>${paragraph(cell)}</w:tc>`).join('')}</w:tr>`).join('')}</w:tbl>`
    : '';
  const body = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${options.paragraphs.map(paragraph).join('')}${table}${' '.repeat(options.bodyPadding ?? 0)}</w:body></w:document>`;
  return writeZipFile(path, {
    '[Content_Types].xml':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
    '_rels/.rels':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
    'word/document.xml': body,
  });
}
