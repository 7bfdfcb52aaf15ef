import { Tokenizer } from 'htmlparser2';
import { textTokenizerCallbacks } from './text-tokenizer-callbacks.ts';
import { tightenTabs, trimEndOf } from './line-whitespace.ts';

/**
 * Extracts the text of a WordprocessingML body (`word/document.xml`): runs of `w:t` in reading
 * order, paragraphs and rows on their own lines, tabs and table cells as tabs, explicit breaks
 * as line breaks. Tracked deletions (`w:delText`) and field codes (`w:instrText`) are left out.
 * Read with htmlparser2's XML tokenizer (a state machine, each character once, no element stack):
 * linear in the size of the XML whatever the markup, where the tag regex used before backtracked
 * quadratically on unclosed `<w:…` runs (issue 9).
 */
export function docxXmlToText(xml: string): string {
  const out: string[] = [];
  // Depth of open `w:t` elements; their text is the document's text.
  let inText = 0;
  let cellDepth = 0;
  let tag = '';
  const open = (name: string): void => {
    if (name === 't') inText++;
    else if (name === 'tc') cellDepth++;
    else if (name === 'tab' || name === 'ptab') out.push('\t');
    else if (name === 'br' || name === 'cr') out.push('\n');
    else if (name === 'noBreakHyphen') out.push('-');
  };
  const close = (name: string): void => {
    if (name === 't') inText = Math.max(0, inText - 1);
    // Paragraphs inside a table cell stay on the row's line.
    else if (name === 'p') out.push(cellDepth > 0 ? ' ' : '\n');
    else if (name === 'tr') out.push('\n');
    else if (name === 'tc') {
      cellDepth = Math.max(0, cellDepth - 1);
      out.push('\t');
    }
  };
  /** The local name of a `w:` element, else `''` (other namespaces carry no body text). */
  const wordName = (start: number, end: number): string =>
    xml.startsWith('w:', start) ? xml.slice(start + 2, end) : '';
  const callbacks = textTokenizerCallbacks(xml, out, () => inText > 0, {
    onopentagname(start, end) {
      tag = wordName(start, end);
      open(tag);
    },
    onselfclosingtag() {
      // `<w:t/>` opens and closes at once; `<w:tab/>` and `<w:br/>` already wrote their character.
      if (tag === 't' || tag === 'tc' || tag === 'p' || tag === 'tr') close(tag);
    },
    onclosetag(start, end) {
      close(wordName(start, end));
    },
  });
  const tokenizer = new Tokenizer({ xmlMode: true, decodeEntities: true }, callbacks);
  // One write: the tokenizer's indices are then offsets into `xml`.
  tokenizer.write(xml);
  tokenizer.end();
  return out
    .join('')
    .split('\n')
    .map((line) => trimEndOf(tightenTabs(line), 'blank'))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
