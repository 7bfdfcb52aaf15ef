/**
 * Deterministic detectors for identifiers in text (emails, phones, SSNs, MRNs, dates, street
 * addresses). The `redact` task combines them with the names and addresses the model finds.
 * Spans are offsets into the original text; values never leave this module except masked.
 */

export type IdentifierType = 'email' | 'phone' | 'ssn' | 'mrn' | 'date' | 'address' | 'name';

export interface Span {
  start: number;
  end: number;
  type: IdentifierType;
}

const MONTHS = 'Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?';
const STREET_SUFFIX = 'Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy|Highway|Hwy|Circle|Cir';

/** Ordered by precedence: when spans overlap, the earlier type wins. */
const DETECTORS: ReadonlyArray<{ type: IdentifierType; pattern: RegExp }> = [
  { type: 'email', pattern: /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g },
  { type: 'ssn', pattern: /\b(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}\b/g },
  // Medical record numbers appear with a label; the number alone is indistinguishable from any id.
  { type: 'mrn', pattern: /\b(?:MRN|Medical Record(?: Number| No\.?)?|Patient ID)\s*[:#]?\s*[A-Z0-9-]{4,20}\b/gi },
  { type: 'phone', pattern: /(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b/g },
  { type: 'date', pattern: new RegExp(`\\b(?:\\d{1,2}[/.-]\\d{1,2}[/.-]\\d{2,4}|\\d{4}-\\d{2}-\\d{2}|(?:${MONTHS})\\.? \\d{1,2}(?:st|nd|rd|th)?,? \\d{4}|\\d{1,2} (?:${MONTHS}) \\d{4})\\b`, 'g') },
  { type: 'address', pattern: new RegExp(`\\b\\d{1,6} (?:[A-Z][a-z]+ ){1,4}(?:${STREET_SUFFIX})\\b\\.?(?:,? (?:Apt|Suite|Unit) \\w+)?`, 'g') },
];

/** Every identifier the deterministic detectors find, restricted to `types` when given. */
export function detectIdentifiers(text: string, types?: readonly IdentifierType[]): Span[] {
  const wanted = types ? new Set(types) : undefined;
  const spans: Span[] = [];
  for (const { type, pattern } of DETECTORS) {
    if (wanted && !wanted.has(type)) continue;
    for (const match of text.matchAll(pattern)) spans.push({ start: match.index, end: match.index + match[0].length, type });
  }
  return spans;
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
