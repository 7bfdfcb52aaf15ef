/** Characters of Windows-1252 at bytes 0x80–0x9F (the rest of the code page is Latin-1); `undefined` marks the five unassigned bytes. */
const HIGH_CONTROLS: ReadonlyArray<string | undefined> = [
  '€',
  undefined,
  '‚',
  'ƒ',
  '„',
  '…',
  '†',
  '‡',
  'ˆ',
  '‰',
  'Š',
  '‹',
  'Œ',
  undefined,
  'Ž',
  undefined,
  undefined,
  '‘',
  '’',
  '“',
  '”',
  '•',
  '–',
  '—',
  '˜',
  '™',
  'š',
  '›',
  'œ',
  undefined,
  'ž',
  'Ÿ',
];

/**
 * Decodes Windows-1252 (the usual encoding of legacy Western text and RTF). Node's own
 * `TextDecoder('windows-1252')` decodes Latin-1 instead, turning € and curly quotes into control
 * characters; unassigned bytes become U+FFFD.
 */
export function decodeWindows1252(bytes: Uint8Array): string {
  let out = '';
  // Why 8192: strings are built in slices to avoid one huge intermediate array for large files.
  const SLICE = 8192;
  for (let start = 0; start < bytes.length; start += SLICE) {
    const chars: string[] = [];
    const end = Math.min(bytes.length, start + SLICE);
    for (let i = start; i < end; i++) {
      const byte = bytes[i] ?? 0;
      chars.push(byte >= 0x80 && byte <= 0x9f ? (HIGH_CONTROLS[byte - 0x80] ?? '\uFFFD') : String.fromCharCode(byte));
    }
    out += chars.join('');
  }
  return out;
}

/** A decoder for a text encoding label, with Windows-1252 done right (see `decodeWindows1252`). */
export function legacyDecoder(label: string): { decode(bytes: Uint8Array): string } {
  if (label.toLowerCase() === 'windows-1252') return { decode: decodeWindows1252 };
  const decoder = new TextDecoder(label);
  return { decode: (bytes) => decoder.decode(bytes) };
}
