import { readFile } from 'node:fs/promises';
import { GembatchError, type ExtractedDocument } from '@gembatch/contracts';
import { sniffText, type TextEncoding } from '../sniff/sniff-text.ts';
import { htmlToText } from './html-to-text.ts';
import { trimEndOf, trimLineEnds, trimStartOf } from './line-whitespace.ts';
import { rtfToText } from './rtf-to-text.ts';
import { decodeWindows1252 } from './windows-1252.ts';

/**
 * Reads a text document (plain, markdown, HTML, XML, RTF) and returns its text. The caller has
 * already checked the size cap. Encoding comes from a BOM, else strict UTF-8, else Windows-1252.
 * Fails with `GB_ERR_EMPTY_INPUT` when no text remains.
 */
export async function extractTextFile(path: string, mime: string): Promise<ExtractedDocument> {
  const bytes = await readFile(path);
  const encoding: TextEncoding = sniffText(bytes, true)?.encoding ?? 'utf-8';
  const raw = encoding === 'windows-1252' ? decodeWindows1252(bytes) : new TextDecoder(encoding).decode(bytes);
  const text = convert(raw, mime);
  if (text.trim().length === 0) throw new GembatchError('GB_ERR_EMPTY_INPUT', `the ${mime} file contains no text`);
  return {
    media_type: mime,
    text,
    pages: [],
    media: [],
    kinds: ['text'],
    meta: { encoding, bytes: bytes.length, chars: text.length },
    warnings: [],
  };
}

function convert(raw: string, mime: string): string {
  switch (mime) {
    case 'text/html':
      return htmlToText(raw);
    case 'application/xml':
      return htmlToText(raw, { xml: true });
    case 'application/rtf':
      return rtfToText(raw);
    default:
      return normaliseLineEnds(raw);
  }
}

/**
 * Plain text and markdown keep their layout; only line endings and trailing blanks are normalised.
 * Linear: `[ \t]+$` (multiline) took 10 s on one line of 60,000 spaces (issue 9).
 */
export function normaliseLineEnds(raw: string): string {
  const text = trimLineEnds(raw.replace(/\r\n?/g, '\n'));
  if (text.trim().length === 0) return '';
  const body = trimEndOf(trimStartOf(text, 'newline'), 'newline');
  return text.endsWith('\n') ? `${body}\n` : body;
}
