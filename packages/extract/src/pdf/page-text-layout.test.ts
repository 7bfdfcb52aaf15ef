import { describe, expect, it } from 'vitest';
import { countVisibleChars, layoutPageText, type PositionedText } from './page-text-layout.ts';

const item = (str: string, x: number, y: number, width: number, hasEOL = false, height = 10): PositionedText => ({
  str,
  transform: [height, 0, 0, height, x, y],
  width,
  height,
  hasEOL,
});

describe('layoutPageText', () => {
  it('starts a new line when the baseline moves and keeps explicit line ends', () => {
    expect(
      layoutPageText([
        item('Hello', 50, 700, 25),
        item(' world', 75, 700, 30),
        item('Next line', 50, 686, 45),
        item('end', 50, 672, 15, true),
      ]),
    ).toBe('Hello world\nNext line\nend');
  });

  it('keeps sub- and superscripts on their line', () => {
    expect(
      layoutPageText([item('E = mc', 50, 700, 30), item('2', 80, 703, 4, false, 6), item(' holds', 84, 700, 25)]),
    ).toBe('E = mc2 holds');
  });

  it('separates table columns with tabs but not words', () => {
    expect(
      layoutPageText([item('Glucose', 50, 500, 35), item('5.4', 200, 500, 15), item('mmol/L', 300, 500, 30)]),
    ).toBe('Glucose\t5.4\tmmol/L');
    expect(layoutPageText([item('two', 50, 500, 15), item('words', 68, 500, 25)])).toBe('twowords');
  });

  it('separates cells written right to left instead of gluing them (a lab report header row)', () => {
    expect(
      layoutPageText([
        item('LAB', 500, 400, 20),
        item('REFERENCE INTERVAL', 380, 400, 90),
        item('RESULT', 250, 400, 35),
        item('TESTS', 50, 400, 30),
      ]),
    ).toBe('LAB\tREFERENCE INTERVAL\tRESULT\tTESTS');
  });

  it('collapses blank lines and trims the page', () => {
    expect(
      layoutPageText([
        item('a', 50, 700, 5, true),
        item('', 0, 0, 0, true),
        item('', 0, 0, 0, true),
        item('b', 50, 600, 5),
      ]),
    ).toBe('a\nb');
  });

  it('counts visible characters only', () => {
    expect(countVisibleChars(' a b\n\tc ')).toBe(3);
  });
});
