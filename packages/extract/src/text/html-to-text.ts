import { decodeHtmlEntities } from './html-entities.ts';

const DROPPED_ELEMENTS = ['script', 'style', 'noscript', 'template', 'head', 'svg', 'math', 'iframe', 'object'];
const BLOCK_TAGS = new Set([
  'p', 'div', 'br', 'hr', 'section', 'article', 'aside', 'header', 'footer', 'main', 'nav', 'blockquote', 'pre', 'address', 'figure', 'figcaption',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'dl', 'dt', 'dd', 'table', 'thead', 'tbody', 'tfoot', 'tr', 'caption', 'form', 'fieldset', 'legend',
  'title', 'paragraph', 'component', 'entry', 'item', 'list', 'content',
]);

/**
 * Turns HTML (or XML such as a CDA document) into readable plain text: drops scripts, styles and
 * comments, ends blocks and table rows with line breaks, separates cells with tabs, marks list items,
 * decodes character references and collapses whitespace. Not a browser: it favours keeping every
 * word over exact layout.
 */
export function htmlToText(html: string): string {
  let text = html.replace(/<!--[\s\S]*?-->/g, ' ').replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, (_, data: string) => data.replace(/</g, '&lt;'));
  for (const element of DROPPED_ELEMENTS) {
    text = text.replace(new RegExp(`<${element}\\b[^>]*>[\\s\\S]*?</${element}\\s*>`, 'gi'), ' ');
  }
  text = text.replace(/<(!doctype|\?xml)[^>]*>/gi, ' ');
  text = text.replace(/<\/?([a-z][a-z0-9:-]*)\b[^>]*>/gi, (tag: string, rawName: string) => {
    const name = (rawName.includes(':') ? rawName.slice(rawName.lastIndexOf(':') + 1) : rawName).toLowerCase();
    const closing = tag.startsWith('</');
    if (name === 'li') return closing ? '\n' : '\n- ';
    if (name === 'td' || name === 'th') return closing ? '\t' : '';
    if (BLOCK_TAGS.has(name)) return '\n';
    // Inline elements join their neighbours as a browser shows them; replaced elements stand apart.
    return name === 'img' || name === 'input' ? ' ' : '';
  });
  text = decodeHtmlEntities(text);
  // Nested blocks each end a line; markup has no paragraph spacing worth keeping.
  return normaliseWhitespace(text).replace(/\n{2,}/g, '\n');
}

/** Collapses runs of spaces, trims lines, and keeps at most one blank line between paragraphs. */
export function normaliseWhitespace(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/[ \u00a0\f\v]+/g, ' ').replace(/ ?\t ?/g, '\t').replace(/\t+$/, '').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
