import { copyFile, writeFile } from 'node:fs/promises';
import { ExtractedDocument } from '@gembatch/contracts';
import {
  pagedTextPdfHeading,
  systemToolAvailable,
  tempDir,
  writeBrokenPagePdf,
  writeEncryptedPdf,
  writeFilledFormPdf,
  writeLyingPageCountPdf,
  writePagedTextPdf,
  writeTextPdf,
  writeTruncatedPdf,
  writeZeroByteFile,
  writeZeroPagePdf,
  type TempDir,
} from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXTRACT_LIMITS, extractFile, type ExtractOptions } from '../src/index.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

let dir: TempDir;
const file = (name: string) => `${dir.path}/${name}`;

function options(path: string, overrides: Partial<ExtractOptions> = {}): ExtractOptions {
  return {
    path,
    limits: DEFAULT_EXTRACT_LIMITS,
    scannedPages: 'ocr',
    visionAvailable: false,
    putBlob: new MemoryBlobSink().put,
    ...overrides,
  };
}

const popplerMissing = !systemToolAvailable('pdftotext') || !systemToolAvailable('pdfinfo');
const qpdfMissing = !systemToolAvailable('qpdf');

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-pdf-');
  await writeTextPdf(file('letter.pdf'), [
    'Dear Dr. Rivera,\nthe MRI of 4 May shows no fracture.',
    'Second page: follow-up in six weeks.',
    'Third page: signed, Dr. Okafor.',
  ]);
  await writePagedTextPdf(file('sixty.pdf'), { pages: 60, linesPerPage: 4 });
});

afterAll(async () => {
  await dir.cleanup();
});

describe('extractFile on text PDFs', () => {
  it('returns per-page text, content-free metadata and a result that satisfies the contract', async () => {
    const doc = await extractFile(options(file('letter.pdf')));
    expect(ExtractedDocument.parse(doc)).toEqual(doc);
    expect(doc.media_type).toBe('application/pdf');
    expect(doc.kinds).toEqual(['text']);
    expect(doc.pages.map((page) => page.source)).toEqual(['text', 'text', 'text']);
    expect(doc.text).toContain('the MRI of 4 May shows no fracture.');
    // Page i starts at the sum of the earlier pages' chars plus two per page break.
    const third = doc.pages.slice(0, 2).reduce((offset, page) => offset + page.chars + 2, 0);
    expect(doc.text.slice(third)).toBe('Third page: signed, Dr. Okafor.');
    expect(doc.meta).toMatchObject({
      pages: 3,
      producer: 'gembatch testing',
      encrypted: false,
      form_fields: 0,
      text_engine: 'pdfjs',
      pages_ocr: [],
      pages_image: [],
    });
    expect(doc.media).toEqual([]);
    expect(doc.warnings).toEqual([]);
  });

  it('treats a PDF named .jpg as a PDF', async () => {
    await copyFile(file('letter.pdf'), file('photo.jpg'));
    const doc = await extractFile(options(file('photo.jpg')));
    expect(doc.media_type).toBe('application/pdf');
    expect(doc.pages).toHaveLength(3);
  });

  it.skipIf(popplerMissing)('reads large PDFs with pdftotext and gets the same pages as pdf.js', async () => {
    const fast = await extractFile(options(file('sixty.pdf')));
    const pdfjs = await extractFile(options(file('sixty.pdf'), { pdfTextEngine: 'pdfjs' }));
    expect(fast.meta.text_engine).toBe('pdftotext');
    expect(pdfjs.meta.text_engine).toBe('pdfjs');
    for (const doc of [fast, pdfjs]) {
      expect(doc.pages).toHaveLength(60);
      expect(doc.pages.every((page) => page.source === 'text')).toBe(true);
      expect(doc.text).toContain(pagedTextPdfHeading(60, 60));
    }
    const headingsOf = (doc: ExtractedDocument) => doc.text.split('\n').filter((line) => line.startsWith('Page '));
    expect(headingsOf(fast)).toEqual(headingsOf(pdfjs));
  });

  it('refuses more pages than the cap and bigger files than the byte cap', async () => {
    await expectErrorCode(
      extractFile(options(file('sixty.pdf'), { limits: { ...DEFAULT_EXTRACT_LIMITS, maxPages: 59 } })),
      'GB_ERR_PDF_TOO_LARGE',
    );
    await expectErrorCode(
      extractFile(
        options(file('sixty.pdf'), { limits: { ...DEFAULT_EXTRACT_LIMITS, maxPages: 59 }, pdfTextEngine: 'pdfjs' }),
      ),
      'GB_ERR_PDF_TOO_LARGE',
    );
    await expectErrorCode(
      extractFile(options(file('letter.pdf'), { limits: { ...DEFAULT_EXTRACT_LIMITS, maxBytes: 100 } })),
      'GB_ERR_PDF_TOO_LARGE',
    );
  });

  it('never sizes work from a declared page count: a PDF claiming 200 million pages reads its real pages', async () => {
    await writeLyingPageCountPdf(file('lying.pdf'), 200_000_000);
    const doc = await extractFile(options(file('lying.pdf')));
    expect(doc.pages).toHaveLength(3);
    expect(doc.text).toContain(pagedTextPdfHeading(3, 3));
  });

  it('keeps every readable page when one page is broken', async () => {
    await writeBrokenPagePdf(file('broken.pdf'), { pages: 5, brokenPage: 2 });
    for (const engine of ['auto', 'pdfjs'] as const) {
      const doc = await extractFile(options(file('broken.pdf'), { pdfTextEngine: engine }));
      expect(doc.pages[2]?.source).toBe('error');
      expect(doc.pages[0]?.source).toBe('text');
      expect(doc.warnings.join('\n')).toContain('could not be read: 3');
      if (engine === 'auto' && !popplerMissing) {
        // pdf.js loses every page after a broken page-tree entry; poppler recovers them.
        expect(doc.pages.map((page) => page.source)).toEqual(['text', 'text', 'error', 'text', 'text']);
        expect(doc.text).toContain(pagedTextPdfHeading(5, 5));
      }
    }
  });

  it('appends filled AcroForm values (which are not in the text layer) to their page', async () => {
    await writeFilledFormPdf(file('form.pdf'), {
      fields: {
        patient_name: { value: 'Jane Roe', tooltip: 'Patient name' },
        mrn: { value: 'MRN-778' },
        allergies: { value: '' },
      },
      checked: ['consent'],
      unchecked: ['smoker'],
    });
    const doc = await extractFile(options(file('form.pdf')));
    expect(doc.text).toContain('Form fields:\nPatient name: Jane Roe\nmrn: MRN-778\nconsent: checked');
    expect(doc.text).not.toContain('smoker: checked');
    expect(doc.meta.form_fields).toBe(3);
    expect(doc.pages[0]?.chars).toBe(doc.text.length);
  });

  it('fails with stable codes on empty, truncated, page-less and non-PDF input', async () => {
    await expectErrorCode(extractFile(options(await writeZeroByteFile(file('zero.pdf')))), 'GB_ERR_EMPTY_INPUT');
    await expectErrorCode(
      extractFile(options(await writeTruncatedPdf(file('truncated.pdf'), 0.4))),
      'GB_ERR_PDF_INVALID',
    );
    await writeFile(file('header-only.pdf'), '%PDF-1.7\n%%EOF\n');
    await expectErrorCode(extractFile(options(file('header-only.pdf'))), 'GB_ERR_PDF_INVALID');
    await expectErrorCode(extractFile(options(await writeZeroPagePdf(file('no-pages.pdf')))), 'GB_ERR_PDF_EMPTY');
    await expectErrorCode(extractFile(options(file('does-not-exist.pdf'))), 'GB_ERR_FILE_NOT_FOUND');
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    await expectErrorCode(
      extractFile(options(file('sixty.pdf'), { signal: controller.signal, pdfTextEngine: 'pdfjs' })),
      'GB_ERR_CANCELLED',
    );
    const running = new AbortController();
    const work = extractFile(options(file('sixty.pdf'), { signal: running.signal, pdfTextEngine: 'pdfjs' }));
    running.abort();
    await expectErrorCode(work, 'GB_ERR_CANCELLED');
  });

  it('keeps the caller’s event loop free while pdf.js parses', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      await extractFile(options(file('sixty.pdf'), { pdfTextEngine: 'pdfjs' }));
    } finally {
      clearInterval(timer);
    }
    // Parsing 60 pages takes far longer than a few 5 ms ticks; a blocked loop would not tick at all meanwhile.
    expect(ticks).toBeGreaterThan(3);
  });
});

describe.skipIf(qpdfMissing)('extractFile on encrypted PDFs', () => {
  beforeAll(async () => {
    await writeEncryptedPdf(file('letter.pdf'), file('user-password.pdf'), {
      userPassword: 's3cret',
      ownerPassword: 'owner-pw',
    });
    await writeEncryptedPdf(file('letter.pdf'), file('owner-only.pdf'), { ownerPassword: 'owner-pw' });
  });

  it('needs the user password, refuses a wrong one and reads with the right one', async () => {
    await expectErrorCode(extractFile(options(file('user-password.pdf'))), 'GB_ERR_PDF_PASSWORD_REQUIRED');
    await expectErrorCode(
      extractFile(options(file('user-password.pdf'), { password: 'wrong' })),
      'GB_ERR_PDF_PASSWORD_INVALID',
    );
    const doc = await extractFile(options(file('user-password.pdf'), { password: 's3cret' }));
    expect(doc.text).toContain('the MRI of 4 May shows no fracture.');
    expect(doc.meta.encrypted).toBe(true);
  });

  it('reads owner-password-only PDFs (copying forbidden) without a password', async () => {
    const doc = await extractFile(options(file('owner-only.pdf')));
    expect(doc.text).toContain('Third page: signed, Dr. Okafor.');
    expect(doc.meta.encrypted).toBe(true);
  });
});
