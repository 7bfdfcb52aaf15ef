import { decodeWindows1252 } from '../text/windows-1252.ts';

/** Text encodings the sniffer recognises; `windows-1252` is the fallback for legacy 8-bit text. */
export type TextEncoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'windows-1252';

/** What a run of bytes is, when it is text. */
export interface SniffedText {
  /** `text/plain`, `text/markdown`, `text/html`, `application/rtf`, `application/xml` or `image/svg+xml`. */
  mime: string;
  encoding: TextEncoding;
}

// Why 2 %: real text has almost no C0 control characters; binary data is full of them.
const MAX_CONTROL_RATIO = 0.02;

/**
 * Decides from a file's first bytes whether it is text and which kind, by content only.
 * `complete` says whether `head` is the whole file (a cut-off multibyte character at the end of a
 * partial head is not an encoding error). Returns `undefined` for binary data.
 */
export function sniffText(head: Uint8Array, complete: boolean): SniffedText | undefined {
  if (head.length === 0) return undefined;
  const bom = detectBom(head);
  let encoding: TextEncoding;
  let sample: string;
  if (bom) {
    encoding = bom;
    sample = new TextDecoder(bom).decode(head.subarray(bom === 'utf-8' ? 3 : 2));
  } else {
    if (head.includes(0)) return undefined;
    const usable = complete ? head : head.subarray(0, utf8SafeEnd(head));
    try {
      sample = new TextDecoder('utf-8', { fatal: true }).decode(usable);
      encoding = 'utf-8';
    } catch {
      sample = decodeWindows1252(head);
      encoding = 'windows-1252';
    }
  }
  if (controlRatio(sample) > MAX_CONTROL_RATIO) return undefined;
  return { mime: classifyText(sample), encoding };
}

function detectBom(head: Uint8Array): TextEncoding | undefined {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return 'utf-8';
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  return undefined;
}

/** Index after the last complete UTF-8 sequence, so a sequence cut by the head's end is not judged. */
function utf8SafeEnd(bytes: Uint8Array): number {
  // A UTF-8 sequence is at most 4 bytes, so only the last 3 can belong to an unfinished one.
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back] ?? 0;
    if ((byte & 0xc0) === 0x80) continue;
    if (byte >= 0xc0) {
      const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return needed > back ? bytes.length - back : bytes.length;
    }
    return bytes.length;
  }
  return bytes.length;
}

function controlRatio(sample: string): number {
  if (sample.length === 0) return 0;
  let controls = 0;
  for (let i = 0; i < sample.length; i++) {
    const code = sample.charCodeAt(i);
    // Tab, line feed, form feed and carriage return are ordinary in text; other C0 codes and DEL are not.
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0c && code !== 0x0d) || code === 0x7f) controls++;
  }
  return controls / sample.length;
}

const MARKDOWN_SIGNALS: readonly RegExp[] = [
  /^#{1,6} \S/m,
  /^\s{0,3}[-*+] \S/m,
  /^\s{0,3}\d+\. \S/m,
  /\[[^\]\n]+\]\([^)\s]+\)/,
  /^```/m,
  /\*\*[^*\n]+\*\*/,
  /^\s{0,3}>\s\S/m,
  /^\|.*\|\s*$/m,
];

function classifyText(sample: string): string {
  const start = sample.replace(/^\s+/, '').slice(0, 1024).toLowerCase();
  if (start.startsWith('{\\rtf')) return 'application/rtf';
  const withoutComments = start.replace(/^(<!--[\s\S]*?-->\s*)+/, '');
  if (/^<!doctype html|^<html[\s>]/.test(withoutComments)) return 'text/html';
  if (/^<svg[\s>]/.test(withoutComments) || (withoutComments.startsWith('<?xml') && /<svg[\s>]/.test(start)))
    return 'image/svg+xml';
  if (withoutComments.startsWith('<?xml')) return 'application/xml';
  if (/^<(head|body|div|p|table|h[1-6])[\s>]/.test(withoutComments)) return 'text/html';
  // Two independent markdown constructs make an accidental match in plain prose unlikely.
  const signals = MARKDOWN_SIGNALS.filter((pattern) => pattern.test(sample)).length;
  if (signals >= 2) return 'text/markdown';
  return 'text/plain';
}
