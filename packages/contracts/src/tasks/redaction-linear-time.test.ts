import { describe, expect, it } from 'vitest';
import { detectIdentifiers, findEmails, type IdentifierType } from './redaction.ts';

/**
 * Hostile inline texts of issue 9 against every detector. 'MRN' + 40,000 spaces took 5.6 s and
 * `a@a.a.a…` grew the same way (quadratic: a megabyte would take many minutes). The bound is loose
 * enough for a busy CI machine with few cores and far below what quadratic time takes at a megabyte.
 */
const MB = 1024 * 1024;
const BOUND_MS = 5_000;

function timedDetect(text: string, types?: IdentifierType[]): { found: string[]; ms: number } {
  const started = performance.now();
  const spans = detectIdentifiers(text, types);
  const ms = performance.now() - started;
  return { found: spans.map((s) => `${s.type}:${text.slice(s.start, s.end)}`), ms };
}

describe('redaction detectors run in linear time', () => {
  it.each([
    ["'MRN' + 40,000 spaces (5.6 s before)", `MRN${' '.repeat(40_000)}`, []],
    ["'MRN' + 1 MB of spaces, then a number", `MRN${' '.repeat(MB)}A1234567`, [`mrn:MRN${' '.repeat(MB)}A1234567`]],
    ['1 MB of MRN labels and colons', 'MRN: #'.repeat(MB / 6), []],
    ['an @ then 1 MB of a.a.a…', `x@${'a.'.repeat(MB / 2)}`, []],
    [
      '1 MB of a.a.a… then an address',
      `${'a.'.repeat(MB / 2)}@example.org`,
      [`email:${'a.'.repeat(MB / 2).slice(0, -1)}.@example.org`],
    ],
    ['1 MB of @@@', '@'.repeat(MB), []],
    ['1 MB of a@a@a…', 'a@'.repeat(MB / 2), []],
    ['1 MB of digits', '1'.repeat(MB), []],
    ['1 MB of digit groups', '123 45 '.repeat(MB / 7), []],
    ['1 MB of spaces', ' '.repeat(MB), []],
    ['1 MB of street-like words', '1 Elm '.repeat(MB / 6), []],
    ['1 MB of month names', 'Jan 1, '.repeat(MB / 7), []],
    ['1 MB of a long capitalised word', `1 A${'a'.repeat(MB)}`, []],
  ])('%s', (_name, text, expected) => {
    const { found, ms } = timedDetect(text);
    expect(found.length).toBe(expected.length);
    expect(found.every((value, index) => value === expected[index])).toBe(true);
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it('finds emails exactly as the regex it replaces, on every kind of boundary', () => {
    const text =
      'Write to jane.roe@example.org, _x@y.co or .lead@dots.net; not a@b, @x.com, a@b.c1 or a@b.cc1 ; tail@end.io';
    const regex = /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g;
    const expected = [...text.matchAll(regex)].map((m) => [m.index, m.index + m[0].length]);
    expect(findEmails(text).map((s) => [s.start, s.end])).toEqual(expected);
    expect(expected.length).toBe(4);
  });
});
