import { describe, expect, it } from 'vitest';
import { detectIdentifiers, findLiterals, maskSpans, mergeSpans } from './redaction.ts';

const NOTE =
  'Patient Jane Roe (MRN: A1234567), DOB 03/14/1961, seen 2026-11-02. Call (555) 123-4567 or jane.roe@example.org. SSN 123-45-6789. Lives at 42 Elm Street, Springfield.';

describe('redaction detectors', () => {
  it('finds each identifier type with its exact span', () => {
    const spans = mergeSpans(detectIdentifiers(NOTE));
    const found = spans.map((s) => [s.type, NOTE.slice(s.start, s.end)]);
    expect(found).toEqual([
      ['mrn', 'MRN: A1234567'],
      ['date', '03/14/1961'],
      ['date', '2026-11-02'],
      ['phone', '(555) 123-4567'],
      ['email', 'jane.roe@example.org'],
      ['ssn', '123-45-6789'],
      ['address', '42 Elm Street'],
    ]);
  });

  it('restricts to the requested types', () => {
    expect(detectIdentifiers(NOTE, ['email']).map((s) => s.type)).toEqual(['email']);
  });

  it('combines model-found names, masks without overlaps, keeps offsets into the original', () => {
    const spans = mergeSpans([
      ...detectIdentifiers(NOTE),
      ...findLiterals(NOTE, ['Jane Roe', 'Jane Roe', ' '], 'name'),
    ]);
    const masked = maskSpans(NOTE, spans);
    expect(masked).toContain('Patient [NAME] ([MRN])');
    expect(masked).not.toMatch(/Jane|123-45-6789|example\.org|555/);
    for (const span of spans) expect(span.end).toBeGreaterThan(span.start);
  });

  it('does not flag invalid SSNs or bare numbers', () => {
    expect(detectIdentifiers('000-12-3456 and 12345', ['ssn', 'phone'])).toEqual([]);
  });
});
