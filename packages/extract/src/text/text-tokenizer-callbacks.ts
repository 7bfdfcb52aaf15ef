import type { TokenizerCallbacks } from 'htmlparser2';

/** The tokenizer events the text readers have no use for (attributes, comments, declarations…). */
const IGNORED_EVENTS = {
  onattribdata() {},
  onattribentity() {},
  onattribend() {},
  onattribname() {},
  oncomment() {},
  ondeclaration() {},
  onend() {},
  onopentagend() {},
  onprocessinginstruction() {},
} satisfies Partial<TokenizerCallbacks>;

/** What a text reader decides: which element opened, closed or closed itself, and whether text counts now. */
export type ElementCallbacks = Pick<TokenizerCallbacks, 'onopentagname' | 'onselfclosingtag' | 'onclosetag'>;

/**
 * htmlparser2 tokenizer callbacks for a text reader (HTML, XML, a DOCX body): the element events
 * are the reader's own; text, decoded entities and CDATA of `source` are pushed to `out` while
 * `keep()` says so; every other event is ignored.
 */
export function textTokenizerCallbacks(
  source: string,
  out: string[],
  keep: () => boolean,
  elements: ElementCallbacks,
): TokenizerCallbacks {
  return {
    ...IGNORED_EVENTS,
    ...elements,
    ontext(start, end) {
      if (keep()) out.push(source.slice(start, end));
    },
    ontextentity(codePoint) {
      if (keep()) out.push(String.fromCodePoint(codePoint));
    },
    oncdata(start, end, endOffset) {
      if (keep()) out.push(source.slice(start, end - endOffset));
    },
  };
}
