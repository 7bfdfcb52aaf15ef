/**
 * Deterministic detectors for identifiers in text (emails, phones, SSNs, MRNs, dates, street
 * addresses). The `redact` task combines them with the names and addresses the model finds.
 * Spans are offsets into the original text; values never leave this module except masked.
 */

/** Kinds of identifiers the `redact` task masks (its `types` option). */
export const IDENTIFIER_TYPES = ['email', 'phone', 'ssn', 'mrn', 'date', 'address', 'name'] as const;
export type IdentifierType = (typeof IDENTIFIER_TYPES)[number];

export interface Span {
  start: number;
  end: number;
  type: IdentifierType;
}

const MONTHS =
  'Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?';
const STREET_SUFFIX =
  'Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy|Highway|Hwy|Circle|Cir';

/**
 * Ordered by precedence: when spans overlap, the earlier type wins. `null` patterns have their own
 * scanner below. Every pattern runs in linear time on any text: each quantifier is bounded, or is
 * followed by something it cannot match, so no start position backtracks over a whole run.
 */
const DETECTORS: ReadonlyArray<{ type: IdentifierType; pattern: RegExp | null }> = [
  // The email regex (`[..]+@[..]+\.[A-Za-z]{2,}`) re-scanned the rest of a run of `a.a.a…` from every
  // start inside it: 0.6 s for 20 KB, quadratic. `findEmails` anchors on each `@` instead.
  { type: 'email', pattern: null },
  { type: 'ssn', pattern: /\b(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}\b/g },
  // Medical record numbers appear with a label; the number alone is indistinguishable from any id.
  // `(?:\s*[:#])?\s*` matches what `\s*[:#]?\s*` did without its n² ways to split a run of blanks
  // between the two `\s*` ('MRN' + 40,000 spaces took 5.6 s).
  { type: 'mrn', pattern: /\b(?:MRN|Medical Record(?: Number| No\.?)?|Patient ID)(?:\s*[:#])?\s*[A-Z0-9-]{4,20}\b/gi },
  { type: 'phone', pattern: /(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b/g },
  {
    type: 'date',
    pattern: new RegExp(
      `\\b(?:\\d{1,2}[/.-]\\d{1,2}[/.-]\\d{2,4}|\\d{4}-\\d{2}-\\d{2}|(?:${MONTHS})\\.? \\d{1,2}(?:st|nd|rd|th)?,? \\d{4}|\\d{1,2} (?:${MONTHS}) \\d{4})\\b`,
      'g',
    ),
  },
  {
    type: 'address',
    pattern: new RegExp(
      `\\b\\d{1,6} (?:[A-Z][a-z]+ ){1,4}(?:${STREET_SUFFIX})\\b\\.?(?:,? (?:Apt|Suite|Unit) \\w+)?`,
      'g',
    ),
  },
];

/** Every identifier the deterministic detectors find, restricted to `types` when given. */
export function detectIdentifiers(text: string, types?: readonly IdentifierType[]): Span[] {
  const wanted = types ? new Set(types) : undefined;
  const spans: Span[] = [];
  for (const { type, pattern } of DETECTORS) {
    if (wanted && !wanted.has(type)) continue;
    if (pattern === null) {
      spans.push(...findEmails(text));
      continue;
    }
    for (const match of text.matchAll(pattern))
      spans.push({ start: match.index, end: match.index + match[0].length, type });
  }
  return spans;
}

const isLocalChar = (code: number): boolean =>
  isWordChar(code) || code === 0x2e || code === 0x25 || code === 0x2b || code === 0x2d; // . % + -
const isWordChar = (code: number): boolean =>
  (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x5f;
/** The domain part of an address (and its dots): letters, digits, `.` and `-`. */
const DOMAIN = /[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/y;

/**
 * The spans `/\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g` finds, in linear time. A local part
 * ends at the first `@` after its start, so each `@` is tried once: the domain with a sticky regex
 * anchored after it (linear: its only backtracking walks back over the domain's own dots), the
 * local part by walking left to the earliest word boundary of the run of local characters.
 */
export function findEmails(text: string): Span[] {
  const spans: Span[] = [];
  let searchFrom = 0;
  // Where the previous match ended: a later match starts no earlier (matches do not overlap).
  let floor = 0;
  for (;;) {
    const at = text.indexOf('@', searchFrom);
    if (at < 0) return spans;
    searchFrom = at + 1;
    DOMAIN.lastIndex = at + 1;
    const domain = DOMAIN.exec(text);
    if (!domain) continue;
    let runStart = at;
    while (runStart > floor && isLocalChar(text.charCodeAt(runStart - 1))) runStart--;
    let start = -1;
    for (let index = runStart; index < at; index++) {
      const before = index > 0 && isWordChar(text.charCodeAt(index - 1));
      if (before !== isWordChar(text.charCodeAt(index))) {
        start = index;
        break;
      }
    }
    if (start < 0) continue;
    const end = at + 1 + domain[0].length;
    spans.push({ start, end, type: 'email' });
    floor = end;
    searchFrom = end;
  }
}

/** Spans of every occurrence of each literal string (names and addresses the model reported). */
export function findLiterals(text: string, literals: readonly string[], type: IdentifierType): Span[] {
  const spans: Span[] = [];
  for (const literal of new Set(literals.map((l) => l.trim()).filter((l) => l.length >= 2))) {
    let from = 0;
    for (;;) {
      const index = text.indexOf(literal, from);
      if (index < 0) break;
      spans.push({ start: index, end: index + literal.length, type });
      from = index + literal.length;
    }
  }
  return spans;
}

/** Sorts spans and drops any that overlap an earlier-starting (or, at a tie, longer) one. */
export function mergeSpans(spans: readonly Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Span[] = [];
  for (const span of sorted) {
    const last = merged.at(-1);
    if (last && span.start < last.end) continue;
    merged.push(span);
  }
  return merged;
}

/** The text with every span replaced by `[TYPE]`. Spans must be merged (sorted, disjoint). */
export function maskSpans(text: string, spans: readonly Span[]): string {
  let out = '';
  let at = 0;
  for (const span of spans) {
    out += text.slice(at, span.start) + `[${span.type.toUpperCase()}]`;
    at = span.end;
  }
  return out + text.slice(at);
}
