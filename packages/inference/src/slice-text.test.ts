import { describe, expect, it } from 'vitest';
import { sliceText, tokenizeInTurns } from './plan-chunks.ts';

describe('sliceText / tokenizeInTurns', () => {
  it('cuts long text into bounded slices after blanks, never inside a surrogate pair, and loses nothing', () => {
    const text = `${'word '.repeat(10_000)}${'😀'.repeat(20_000)}`;
    const slices = sliceText(text, 1_000);
    expect(slices.join('')).toBe(text);
    expect(slices.every((slice) => slice.length <= 1_000)).toBe(true);
    expect(slices[0]?.endsWith(' ')).toBe(true);
    for (const slice of slices) expect(/^[\uDC00-\uDFFF]/.test(slice)).toBe(false);
    expect(sliceText('short', 1_000)).toEqual(['short']);
  });

  it('stays linear on a megabyte without blanks', () => {
    const text = 'x'.repeat(1024 * 1024);
    const started = performance.now();
    const slices = sliceText(text, 1_024);
    expect(slices).toHaveLength(1024);
    // Linear: milliseconds; a rescan from the start of the text per slice would be ~100× slower.
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('tokenizes slice by slice into the tokens of the whole when slices meet at blanks', async () => {
    const engine = {
      tokenize: async (text: string) =>
        text
          .split(' ')
          .filter((w) => w.length > 0)
          .map((w) => w.length),
    };
    const text = 'alpha beta gamma '.repeat(5_000);
    expect(await tokenizeInTurns(engine, text)).toEqual(await engine.tokenize(text));
  });
});
