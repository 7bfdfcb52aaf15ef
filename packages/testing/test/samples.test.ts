import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, onTestFinished, test } from 'vitest';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import {
  makeLongText,
  SAMPLE_CLINIC_NOTE,
  SAMPLE_CONTRACT,
  SAMPLE_LETTER,
  tempDir,
  writeTextFile,
  writeTextPdf,
  writeTruncatedPdf,
  writeZeroByteFile,
} from '../src/index.ts';

async function scratch(): Promise<string> {
  const dir = await tempDir();
  onTestFinished(() => dir.cleanup());
  return dir.path;
}

/** Text of each page, read back with pdf.js (a real PDF parser, not our writer). */
async function pdfPages(path: string): Promise<string[]> {
  const document = await getDocument({
    data: new Uint8Array(await readFile(path)),
    useSystemFonts: false,
    isEvalSupported: false,
    standardFontDataUrl,
    verbosity: 0,
  }).promise;
  try {
    const pages: string[] = [];
    for (let number = 1; number <= document.numPages; number++) {
      const content = await (await document.getPage(number)).getTextContent();
      pages.push(content.items.map((item) => ('str' in item ? item.str + (item.hasEOL ? '\n' : ' ') : '')).join(''));
    }
    return pages;
  } finally {
    await document.destroy();
  }
}

/** pdf.js's own copies of the 14 standard fonts, so it measures Helvetica without warnings. */
const standardFontDataUrl = `${join(dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json')), 'standard_fonts')}/`;

const words = (text: string) => text.split(/\s+/).filter((word) => word !== '');

describe('writeTextPdf', () => {
  test('writes one page per entry with a text layer pdf.js reads back', async () => {
    const path = await writeTextPdf(join(await scratch(), 'sub', 'letter.pdf'), [
      SAMPLE_LETTER,
      SAMPLE_CONTRACT,
      SAMPLE_CLINIC_NOTE,
    ]);
    const pages = await pdfPages(path);
    expect(pages).toHaveLength(3);
    expect(words(pages[0] ?? '')).toEqual(words(SAMPLE_LETTER));
    expect(words(pages[1] ?? '')).toEqual(words(SAMPLE_CONTRACT));
    expect(pages[2]).toContain('MRN: 00482913');
  });

  test('wraps long lines inside the margins and flows overflowing text onto more pages', async () => {
    const long = makeLongText(1500, 4);
    const path = await writeTextPdf(join(await scratch(), 'long.pdf'), [long, 'last page']);
    const pages = await pdfPages(path);
    expect(pages.length).toBeGreaterThan(2);
    expect(pages.at(-1)?.trim()).toBe('last page');
    expect(words(pages.slice(0, -1).join(' '))).toEqual(words(long));
    const unbroken = 'x'.repeat(400);
    const broken = await pdfPages(await writeTextPdf(join(await scratch(), 'word.pdf'), [unbroken]));
    expect(words(broken[0] ?? '').length).toBeGreaterThan(1);
    expect(words(broken[0] ?? '').join('')).toBe(unbroken);
  });

  test('is deterministic', async () => {
    const dir = await scratch();
    const hash = async (name: string) =>
      createHash('sha256')
        .update(await readFile(await writeTextPdf(join(dir, name), [SAMPLE_LETTER], { title: 'Letter' })))
        .digest('hex');
    expect(await hash('a.pdf')).toBe(await hash('b.pdf'));
  });

  test('refuses characters the standard font cannot encode', async () => {
    await expect(writeTextPdf(join(await scratch(), 'bad.pdf'), ['ok', 'Tokyo 東京'])).rejects.toMatchObject({
      code: 'GB_ERR_BAD_REQUEST',
      message: expect.stringContaining('page 2'),
    });
  });
});

describe('makeLongText', () => {
  test('is about the asked length, deterministic per seed, in paragraphs of sentences', () => {
    const text = makeLongText(2000, 7);
    expect(words(text).length).toBeGreaterThanOrEqual(2000);
    expect(words(text).length).toBeLessThan(2040);
    expect(makeLongText(2000, 7)).toBe(text);
    expect(makeLongText(2000, 8)).not.toBe(text);
    expect(text.split('\n\n').length).toBeGreaterThan(10);
    expect(text).toMatch(/^[A-Z][\x20-\x7e\n]*\.$/);
  });
});

describe('other samples', () => {
  test('writeTextFile writes UTF-8 and writeZeroByteFile an empty file', async () => {
    const dir = await scratch();
    const text = 'naïve café ✓\n';
    expect(await readFile(await writeTextFile(join(dir, 'a', 'b.txt'), text), 'utf8')).toBe(text);
    expect((await stat(await writeZeroByteFile(join(dir, 'empty.pdf')))).size).toBe(0);
  });

  test('writeTruncatedPdf keeps the header and cuts the trailer; pdf.js refuses it', async () => {
    const path = await writeTruncatedPdf(join(await scratch(), 'cut.pdf'), 0.4);
    const bytes = await readFile(path);
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(bytes.includes('%%EOF')).toBe(false);
    await expect(pdfPages(path)).rejects.toThrow();
  });

  test('writeTruncatedPdf refuses fractions outside (0, 1)', async () => {
    const dir = await scratch();
    for (const fraction of [0, 1, -0.5, Number.NaN])
      await expect(writeTruncatedPdf(join(dir, 'x.pdf'), fraction)).rejects.toMatchObject({
        code: 'GB_ERR_BAD_REQUEST',
      });
  });

  test('the sample texts are short, fictional English and fit a standard-font PDF', async () => {
    for (const sample of [SAMPLE_LETTER, SAMPLE_CONTRACT, SAMPLE_CLINIC_NOTE]) {
      expect(words(sample).length).toBeGreaterThan(50);
      expect(sample).toMatch(/^[\x20-\x7e\n]+$/);
    }
    expect(SAMPLE_CLINIC_NOTE).toContain('example.com');
  });
});
