import { decodeHtmlEntities } from './html-entities.ts';

/**
 * Extracts the text of a WordprocessingML body (`word/document.xml`): runs of `w:t` in reading
 * order, paragraphs and rows on their own lines, tabs and table cells as tabs, explicit breaks
 * as line breaks. Tracked deletions (`w:delText`) and field codes (`w:instrText`) are left out.
 */
export function docxXmlToText(xml: string): string {
  const out: string[] = [];
  let inText = false;
  let cellDepth = 0;
  const pattern = /<(\/?)w:([A-Za-z]+)\b[^>]*?(\/?)>|([^<]+)/g;
  for (let match = pattern.exec(xml); match; match = pattern.exec(xml)) {
    const [, closing, tag, selfClosing, text] = match;
    if (text !== undefined) {
      if (inText) out.push(decodeHtmlEntities(text));
      continue;
    }
    if (tag === 't') {
      inText = closing !== '/' && selfClosing !== '/';
    } else if (tag === 'tc' && closing !== '/' && selfClosing !== '/') {
      cellDepth++;
    } else if (closing === '/') {
      // Paragraphs inside a table cell stay on the row's line.
      if (tag === 'p') out.push(cellDepth > 0 ? ' ' : '\n');
      else if (tag === 'tr') out.push('\n');
      else if (tag === 'tc') {
        cellDepth = Math.max(0, cellDepth - 1);
        out.push('\t');
      }
    } else if (tag === 'tab' || tag === 'ptab') {
      out.push('\t');
    } else if (tag === 'br' || tag === 'cr') {
      out.push('\n');
    } else if (tag === 'noBreakHyphen') {
      out.push('-');
    }
  }
  return out
    .join('')
    .split('\n')
    .map((line) => line.replace(/ *\t */g, '\t').replace(/[ \t]+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
