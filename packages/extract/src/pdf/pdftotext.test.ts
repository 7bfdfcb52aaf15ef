import { describe, expect, it } from 'vitest';
import { PageSplitter } from './pdftotext.ts';

describe('PageSplitter', () => {
  it('splits at form feeds across chunk boundaries, a multibyte character cut in two included, and tidies each page', () => {
    const output = Buffer.from('Première page  \nsuite\f\fDritte Seite – Ende\n\n\n\nx\f\n', 'utf8');
    const cut = output.indexOf(Buffer.from('–')) + 1;
    for (const chunks of [[output], [output.subarray(0, 3), output.subarray(3, cut), output.subarray(cut)]]) {
      const splitter = new PageSplitter();
      for (const chunk of chunks) splitter.write(chunk);
      expect(splitter.end()).toBe('\n');
      expect(splitter.pages).toEqual(['Première page\nsuite', '', 'Dritte Seite – Ende\n\nx']);
    }
  });

  it('returns what follows the last form feed, so a range that printed a page too few or too many is told apart', () => {
    const splitter = new PageSplitter();
    splitter.write(Buffer.from('one\ftwo without its form feed'));
    expect(splitter.pages).toEqual(['one']);
    expect(splitter.end()).toBe('two without its form feed');
  });
});
