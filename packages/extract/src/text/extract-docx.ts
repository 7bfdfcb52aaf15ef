import { GembatchError, type ExtractedDocument } from '@gembatch/contracts';
import { docxXmlToText } from './docx-xml-to-text.ts';
import { readZipEntry } from './zip-entry-reader.ts';

// Why 128 MiB: the body XML of a thousand-page Word file with tables is tens of megabytes; the cap
// stays far below V8's longest string (~512 MiB), which the old cap (the upload limit) ran into.
const MAX_DOCUMENT_XML_BYTES = 128 * 1024 * 1024;
// Why 100: WordprocessingML deflates 5–20×; only padding (a zip bomb) reaches 100× at sizes past 16 MiB.
const MAX_INFLATE_RATIO = 100;

/** MIME type of a Word (DOCX) document. */
export const DOCX_MIME = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

/**
 * Reads the body text of a DOCX (Office Open XML) document: its `word/document.xml`, inflated
 * with a size cap (the smaller of `maxBytes` and 128 MiB) and a ratio guard (100×), so a zip bomb
 * fails fast with the non-retryable `GB_ERR_PAYLOAD_TOO_LARGE`. Headers, footers, comments and
 * footnotes are not read. Fails with `GB_ERR_EMPTY_INPUT` when the body has no text.
 */
export async function extractDocx(path: string, maxBytes: number): Promise<ExtractedDocument> {
  const xml = await readZipEntry(path, 'word/document.xml', {
    maxBytes: Math.min(maxBytes, MAX_DOCUMENT_XML_BYTES),
    maxRatio: MAX_INFLATE_RATIO,
  });
  if (!xml) throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', 'the DOCX has no word/document.xml');
  const text = docxXmlToText(xml.toString('utf8'));
  if (text.length === 0) throw new GembatchError('GB_ERR_EMPTY_INPUT', 'the DOCX contains no text');
  return {
    media_type: DOCX_MIME,
    text,
    pages: [],
    media: [],
    kinds: ['text'],
    meta: { xml_bytes: xml.length, chars: text.length },
    warnings: [],
  };
}
