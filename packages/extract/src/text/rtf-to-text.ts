import { normaliseWhitespace } from './html-to-text.ts';
import { legacyDecoder } from './windows-1252.ts';

/** Destinations whose content is not document text (fonts, colours, styles, metadata, pictures). */
const SKIPPED_DESTINATIONS = new Set([
  'fonttbl',
  'colortbl',
  'stylesheet',
  'listtable',
  'listoverridetable',
  'info',
  'pict',
  'object',
  'objdata',
  'themedata',
  'colorschememapping',
  'datastore',
  'latentstyles',
  'rsidtbl',
  'generator',
  'xmlnstbl',
  'mmathPr',
  'pgdsctbl',
  'revtbl',
  'filetbl',
  'header',
  'footer',
  'headerl',
  'headerr',
  'headerf',
  'footerl',
  'footerr',
  'footerf',
  'fldinst',
  'bkmkstart',
  'bkmkend',
  'wgrffmtfilter',
  'nonshppict',
]);

const CONTROL_WORD_TEXT: Readonly<Record<string, string>> = {
  par: '\n',
  line: '\n',
  sect: '\n\n',
  page: '\n\n',
  row: '\n',
  cell: '\t',
  nestcell: '\t',
  tab: '\t',
  emdash: '—',
  endash: '–',
  bullet: '•',
  lquote: '‘',
  rquote: '’',
  ldblquote: '“',
  rdblquote: '”',
  emspace: ' ',
  enspace: ' ',
  qmspace: ' ',
};

interface GroupState {
  skip: boolean;
  /** Fallback characters to skip after each `\uN` (set by `\ucN`). */
  unicodeSkip: number;
}

/**
 * Extracts the text of an RTF document: paragraphs, tabs and table cells become line breaks and
 * tabs; `\'hh` escapes are decoded in the document's ANSI code page (`\ansicpgN`, Windows-1252 by
 * default) and `\uN` in Unicode; fonts, styles, pictures, headers and metadata are skipped.
 */
export function rtfToText(rtf: string): string {
  const codePageMatch = /\\ansicpg(\d+)/.exec(rtf.slice(0, 4096));
  let decoder: { decode(bytes: Uint8Array): string };
  try {
    decoder = legacyDecoder(codePageMatch ? `windows-${codePageMatch[1]}` : 'windows-1252');
  } catch {
    decoder = legacyDecoder('windows-1252');
  }
  const out: string[] = [];
  const stack: GroupState[] = [];
  let state: GroupState = { skip: false, unicodeSkip: 1 };
  let pendingBytes: number[] = [];
  let skipFallback = 0;
  const flushBytes = () => {
    if (pendingBytes.length > 0) {
      if (!state.skip) out.push(decoder.decode(new Uint8Array(pendingBytes)));
      pendingBytes = [];
    }
  };
  const emit = (text: string) => {
    flushBytes();
    if (!state.skip) out.push(text);
  };
  let i = 0;
  let groupStart = false;
  while (i < rtf.length) {
    const ch = rtf[i] ?? '';
    if (ch === '{') {
      flushBytes();
      stack.push(state);
      state = { ...state };
      groupStart = true;
      i++;
      continue;
    }
    if (ch === '}') {
      flushBytes();
      state = stack.pop() ?? { skip: false, unicodeSkip: 1 };
      groupStart = false;
      i++;
      continue;
    }
    if (ch === '\\') {
      const next = rtf[i + 1] ?? '';
      if (next === "'") {
        const byte = Number.parseInt(rtf.slice(i + 2, i + 4), 16);
        i += 4;
        if (skipFallback > 0) {
          skipFallback--;
        } else if (!Number.isNaN(byte)) {
          pendingBytes.push(byte);
        }
        groupStart = false;
        continue;
      }
      const word = /^\\([a-zA-Z]+)(-?\d+)? ?/.exec(rtf.slice(i, i + 40));
      if (word) {
        const name = word[1] ?? '';
        const param = word[2] === undefined ? undefined : Number(word[2]);
        i += word[0].length;
        if (groupStart && SKIPPED_DESTINATIONS.has(name)) state.skip = true;
        groupStart = false;
        if (name === 'uc' && param !== undefined) {
          state.unicodeSkip = param;
        } else if (name === 'u' && param !== undefined) {
          // RTF writes code points above 32767 as negative 16-bit numbers.
          emit(String.fromCharCode(param < 0 ? param + 65536 : param));
          skipFallback = state.unicodeSkip;
        } else {
          const text = CONTROL_WORD_TEXT[name];
          if (text !== undefined) emit(text);
        }
        continue;
      }
      // Control symbols: \* marks an ignorable destination; \~ \- \_ and escaped braces are text.
      if (next === '*') {
        state.skip = true;
      } else if (next === '~') {
        emit(' ');
      } else if (next === '_') {
        emit('-');
      } else if (next === '\n' || next === '\r') {
        emit('\n');
      } else if (next === '{' || next === '}' || next === '\\') {
        emit(next);
      }
      groupStart = false;
      i += 2;
      continue;
    }
    groupStart = false;
    i++;
    // Raw line breaks in RTF source are formatting, not text.
    if (ch === '\n' || ch === '\r') continue;
    if (skipFallback > 0) {
      skipFallback--;
      continue;
    }
    emit(ch);
  }
  flushBytes();
  return normaliseWhitespace(out.join(''));
}
