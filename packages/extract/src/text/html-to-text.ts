import { Tokenizer } from 'htmlparser2';
import { textTokenizerCallbacks } from './text-tokenizer-callbacks.ts';
import { tightenTabs, trimEndOf } from './line-whitespace.ts';

const DROPPED_ELEMENTS = new Set([
  'script',
  'style',
  'noscript',
  'template',
  'head',
  'svg',
  'math',
  'iframe',
  'object',
]);
const BLOCK_TAGS = new Set([
  'p',
  'div',
  'br',
  'hr',
  'section',
  'article',
  'aside',
  'header',
  'footer',
  'main',
  'nav',
  'blockquote',
  'pre',
  'address',
  'figure',
  'figcaption',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'ul',
  'ol',
  'dl',
  'dt',
  'dd',
  'table',
  'thead',
  'tbody',
  'tfoot',
  'tr',
  'caption',
  'form',
  'fieldset',
  'legend',
  'title',
  'paragraph',
  'component',
  'entry',
  'item',
  'list',
  'content',
]);

export interface HtmlToTextOptions {
  /** Parse as XML (CDA and other XML documents): case-sensitive names, `<x/>` closes. Defaults to `false` (HTML). */
  xml?: boolean;
}

/**
 * Turns HTML (or XML such as a CDA document) into readable plain text: drops scripts, styles and
 * comments, ends blocks and table rows with line breaks, separates cells with tabs, marks list items,
 * decodes character references and collapses whitespace. Not a browser: it favours keeping every
 * word over exact layout.
 *
 * Linear in the input, whatever the markup. It runs htmlparser2's tokenizer (a state machine that
 * reads each character once, and knows `<script>`/`<style>` raw text, comments and CDATA) without
 * htmlparser2's `Parser`: the Parser keeps the open elements in an array it `unshift`s and searches
 * on every tag, quadratic on 50,000 unclosed `<b>` (4 s for 400 KB). The tag regexes used before
 * backtracked quadratically too (issue 9). Only the dropped elements need a depth here.
 */
export function htmlToText(html: string, options: HtmlToTextOptions = {}): string {
  const out: string[] = [];
  // Open dropped elements (`<script>`, `<head>`…): their text is skipped, nested ones included.
  let dropped = 0;
  let tag = '';
  const nameAt = (start: number, end: number): string => {
    const raw = html.slice(start, end);
    return (raw.includes(':') ? raw.slice(raw.lastIndexOf(':') + 1) : raw).toLowerCase();
  };
  const close = (name: string): void => {
    if (DROPPED_ELEMENTS.has(name)) {
      dropped = Math.max(0, dropped - 1);
      return;
    }
    if (dropped > 0) return;
    if (name === 'li' || BLOCK_TAGS.has(name)) out.push('\n');
    else if (name === 'td' || name === 'th') out.push('\t');
  };
  const callbacks = textTokenizerCallbacks(html, out, () => dropped === 0, {
    onopentagname(start, end) {
      tag = nameAt(start, end);
      // A `<body>` ends a `<head>` left open, as in a browser.
      if (tag === 'body') dropped = 0;
      if (DROPPED_ELEMENTS.has(tag)) dropped++;
      if (dropped > 0) return;
      if (tag === 'li') out.push('\n- ');
      else if (BLOCK_TAGS.has(tag)) out.push('\n');
      // Replaced elements stand apart; other inline elements join their neighbours as a browser shows them.
      else if (tag === 'img' || tag === 'input') out.push(' ');
    },
    onselfclosingtag() {
      // `<svg/>` and, in XML, any `<x/>` has no content to drop; in HTML `<div/>` is just an open tag.
      if (options.xml === true || DROPPED_ELEMENTS.has(tag)) close(tag);
    },
    onclosetag(start, end) {
      close(nameAt(start, end));
    },
  });
  const tokenizer = new Tokenizer({ xmlMode: options.xml === true, decodeEntities: true }, callbacks);
  // One write: the tokenizer's indices are then offsets into `html`.
  tokenizer.write(html);
  tokenizer.end();
  // Nested blocks each end a line; markup has no paragraph spacing worth keeping.
  return collapseBlankLines(normaliseWhitespace(out.join('')));
}

/** Collapses runs of spaces, trims lines, and keeps at most one blank line between paragraphs. */
export function normaliseWhitespace(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => trimEndOf(tightenTabs(line.replace(/[ \u00a0\f\v]+/g, ' ')), 'tab').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function collapseBlankLines(text: string): string {
  return text.replace(/\n{2,}/g, '\n');
}
