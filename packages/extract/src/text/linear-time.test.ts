import { describe, expect, it } from 'vitest';
import { docxXmlToText } from './docx-xml-to-text.ts';
import { normaliseLineEnds } from './extract-text-file.ts';
import { htmlToText } from './html-to-text.ts';
import { rtfToText } from './rtf-to-text.ts';

/**
 * Hostile inputs of issue 9: each took seconds (quadratic backtracking) at tens of kilobytes, so
 * minutes to an hour at a megabyte. Linear code reads a megabyte in milliseconds; the bound per
 * case is loose enough for a busy CI machine and still far below what quadratic time would take.
 */
const MB = 1024 * 1024;
/**
 * Generous for a busy CI machine (the linear code needs 10-300 ms on two shared cores); the quadratic originals
 * need minutes to an hour.
 */
const BOUND_MS = 5_000;

/** Compares without a diff: a failing diff of two 1 MB strings would itself take minutes. */
function expectSameText(actual: string, expected: string): void {
  expect(actual.length).toBe(expected.length);
  expect(actual === expected, `text differs: ${JSON.stringify(actual.slice(0, 60))}…`).toBe(true);
}

function timed<T>(run: () => T): { value: T; ms: number } {
  const started = performance.now();
  const value = run();
  return { value, ms: performance.now() - started };
}

describe('text normalisers run in linear time on hostile input', () => {
  it("plain text: 'a' + 60,000 spaces + 'x' (the issue's 60 KB upload, 9.9 s before) and a 1 MB variant", () => {
    for (const spaces of [60_000, MB]) {
      const { value, ms } = timed(() => normaliseLineEnds(`a${' '.repeat(spaces)}x\n`));
      expectSameText(value, `a${' '.repeat(spaces)}x\n`);
      expect(ms).toBeLessThan(BOUND_MS);
    }
    const { value, ms } = timed(() => normaliseLineEnds(`a${' \t'.repeat(MB / 2)}\n${'\n'.repeat(MB)}b`));
    expectSameText(value, `a\n${'\n'.repeat(MB)}b`);
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it.each([
    ['100,000 spaces', ' '.repeat(100_000), ''],
    ["100,000 '<'", '<'.repeat(100_000), '<'.repeat(100_000)],
    ['1 MB of unclosed <a', '<a'.repeat(MB / 2), ''],
    ['1 MB of unclosed <!--', '<!--'.repeat(MB / 4), ''],
    ['1 MB of <script> without its end', `x${'<script>'.repeat(MB / 8)}`, 'x'],
    ['1 MB of tabs inside a line (tabs are kept: they separate cells)', `a${'\t'.repeat(MB)}x`, `a${'\t'.repeat(MB)}x`],
    ['1 MB of spaces inside a line', `a${' '.repeat(MB)}x`, 'a x'],
    ['50,000 open tags then 50,000 unmatched closes', `${'<b>'.repeat(50_000)}y${'</i>'.repeat(50_000)}`, 'y'],
  ])('HTML: %s', (_name, html, expected) => {
    const { value, ms } = timed(() => htmlToText(html));
    expectSameText(value, expected);
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it('XML mode: 1 MB of unclosed tags and CDATA', () => {
    const { value, ms } = timed(() => htmlToText(`<doc>${'<x'.repeat(MB / 4)}`, { xml: true }));
    expectSameText(value, '');
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it.each([
    ['a run of 1 MB of spaces', `<w:p><w:r><w:t>a${' '.repeat(MB)}x</w:t></w:r></w:p>`, `a${' '.repeat(MB)}x`],
    ['1 MB of spaces then a tab', `<w:p><w:r><w:t>a${' '.repeat(MB)}</w:t><w:tab/><w:t>b</w:t></w:r></w:p>`, 'a\tb'],
    ["1 MB of unclosed '<w:p'", `<w:t>z</w:t>${'<w:p'.repeat(MB / 4)}`, 'z'],
  ])('DOCX XML: %s', (_name, xml, expected) => {
    const { value, ms } = timed(() => docxXmlToText(xml));
    expectSameText(value, expected);
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it('RTF: 1 MB of spaces and tabs', () => {
    const { value, ms } = timed(() => rtfToText(`{\\rtf1 a${' '.repeat(MB)}\\tab${' '.repeat(MB)}b}`));
    expectSameText(value, 'a\tb');
    expect(ms).toBeLessThan(BOUND_MS);
  });
});
