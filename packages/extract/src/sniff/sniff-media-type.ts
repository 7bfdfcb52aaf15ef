import { open } from 'node:fs/promises';
import { fileTypeFromFile } from 'file-type';
import { GembatchError } from '@gembatch/contracts';
import { DOCX_MIME } from '../text/extract-docx.ts';
import { sniffText, type SniffedText } from './sniff-text.ts';

/** What kind of input a file is, decided by its content. */
export type MediaKind = 'pdf' | 'text' | 'image' | 'audio' | 'video' | 'unknown';

/** The result of `sniffMediaType`: a MIME type, the kind that decides the extraction path, and a human description. */
export interface SniffedMedia {
  mime: string;
  kind: MediaKind;
  /** What was detected, for messages (e.g. `PNG image (png)`, `text/markdown; charset=utf-8`, `empty file`). Content-free. */
  detail: string;
}

// Why 64 KiB: enough text to judge encoding and markup, small enough to read for every upload.
const HEAD_BYTES = 64 * 1024;
// Why 1024: the PDF spec lets readers accept a header anywhere in the first 1024 bytes, and real files use that.
const PDF_HEADER_WINDOW = 1024;

const KIND_BY_MIME_PREFIX: ReadonlyArray<[string, MediaKind]> = [
  ['image/', 'image'],
  ['audio/', 'audio'],
  ['video/', 'video'],
];

/** Containers file-type reports under a non-media MIME type that ffmpeg reads as audio/video. */
const MEDIA_BY_MIME: Readonly<Record<string, MediaKind>> = {
  'application/vnd.ms-asf': 'video',
  'application/mxf': 'video',
  'application/ogg': 'audio',
};

/**
 * Sniffs a file's type from its bytes, never from its name: magic numbers (file-type) for binary
 * formats, then content checks for text (plain, markdown, HTML, RTF, XML). A PDF named `.jpg` is a
 * PDF. Fails with `GB_ERR_FILE_NOT_FOUND` when the path cannot be read.
 */
export async function sniffMediaType(path: string): Promise<SniffedMedia> {
  const head = await readHead(path);
  if (head.bytes.length === 0) return { mime: 'application/octet-stream', kind: 'unknown', detail: 'empty file' };
  const text = sniffText(head.bytes, head.complete);
  // A UTF-16 byte-order mark looks like an MPEG audio frame header to magic-number sniffing.
  if (text && hasByteOrderMark(head.bytes)) return fromText(text);
  const binary = await fileTypeFromFile(path);
  // file-type names any XML "xml"; the text sniffer tells documents from SVG drawings.
  if (binary && !(binary.mime === 'application/xml' && text)) return fromFileType(binary.mime, binary.ext);
  if (text) return fromText(text);
  // Only binary data may carry a late PDF header: a text file that merely mentions "%PDF-" stays text.
  if (includesPdfHeader(head.bytes))
    return { mime: 'application/pdf', kind: 'pdf', detail: 'PDF document (header after leading bytes)' };
  return { mime: 'application/octet-stream', kind: 'unknown', detail: 'unrecognised binary data' };
}

function fromText(text: SniffedText): SniffedMedia {
  const kind: MediaKind = text.mime === 'image/svg+xml' ? 'unknown' : 'text';
  return { mime: text.mime, kind, detail: `${text.mime}; charset=${text.encoding}` };
}

function hasByteOrderMark(bytes: Uint8Array): boolean {
  return (
    (bytes[0] === 0xff && bytes[1] === 0xfe) ||
    (bytes[0] === 0xfe && bytes[1] === 0xff) ||
    (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
  );
}

function fromFileType(mime: string, ext: string): SniffedMedia {
  if (mime === 'application/pdf') return { mime, kind: 'pdf', detail: `PDF document (${ext})` };
  if (mime === 'application/rtf') return { mime, kind: 'text', detail: 'application/rtf' };
  if (mime === DOCX_MIME) return { mime, kind: 'text', detail: 'Word document (docx)' };
  const prefixed = KIND_BY_MIME_PREFIX.find(([prefix]) => mime.startsWith(prefix));
  const kind = prefixed?.[1] ?? MEDIA_BY_MIME[mime] ?? 'unknown';
  const label = kind === 'unknown' ? 'file' : kind;
  return { mime, kind, detail: `${ext.toUpperCase()} ${label} (${mime})` };
}

function includesPdfHeader(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, PDF_HEADER_WINDOW)).includes('%PDF-');
}

async function readHead(path: string): Promise<{ bytes: Uint8Array; complete: boolean }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new GembatchError('GB_ERR_FILE_NOT_FOUND', 'the input file could not be opened', { cause: error });
  }
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
    const { size } = await handle.stat();
    return { bytes: buffer.subarray(0, bytesRead), complete: bytesRead >= size };
  } finally {
    await handle.close();
  }
}
