import { GembatchError, type ExtractedDocument } from '@gembatch/contracts';
import { docxXmlToText } from './docx-xml-to-text.ts';
import { readZipEntry } from './zip-entry-reader.ts';

/** MIME type of a Word (DOCX) document. */
export const DOCX_MIME = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

/**
 * Reads the body text of a DOCX (Office Open XML) document: its `word/document.xml`, inflated
 * with a size cap (`maxBytes`, against zip bombs). Headers, footers, comments and footnotes are
 * not read. Fails with `GB_ERR_EMPTY_INPUT` when the body has no text.
 */
export async function extractDocx(path: string, maxBytes: number): Promise<ExtractedDocument> {
  const xml = await readZipEntry(path, 'word/document.xml', maxBytes);
  if (!xml) throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', 'the DOCX has no word/document.xml');
  const text = docxXmlToText(xml.toString('utf8'));
  if (text.length === 0) throw new GembatchError('GB_ERR_EMPTY_INPUT', 'the DOCX contains no text');
  return { media_type: DOCX_MIME, text, pages: [], media: [], kinds: ['text'], meta: { xml_bytes: xml.length, chars: text.length }, warnings: [] };
}
