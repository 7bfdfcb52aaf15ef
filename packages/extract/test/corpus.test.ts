import { join } from 'node:path';
import { ExtractedDocument } from '@gembatch/contracts';
import { systemToolAvailable } from '@gembatch/testing';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DEFAULT_EXTRACT_LIMITS, extractFile, type ExtractLimits, type ExtractOptions } from '../src/index.ts';
import { corpusDir } from './corpus-dir.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

/**
 * Real public files from the shared corpus (see its README for what each is and its expected
 * outcome). Skipped, with the reason, when the corpus folder is absent.
 */
const corpus = corpusDir();
const at = (relative: string) => join(corpus ?? '', relative);
const tesseractMissing = !systemToolAvailable('tesseract');
const ffmpegMissing = !systemToolAvailable('ffmpeg') || !systemToolAvailable('ffprobe');

function options(
  relative: string,
  sink = new MemoryBlobSink(),
  overrides: Partial<ExtractOptions> = {},
  limits: Partial<ExtractLimits> = {},
): ExtractOptions {
  return {
    path: at(relative),
    limits: { ...DEFAULT_EXTRACT_LIMITS, ...limits },
    scannedPages: 'auto',
    visionAvailable: false,
    putBlob: sink.put,
    ...overrides,
  };
}

async function extractValid(
  relative: string,
  sink = new MemoryBlobSink(),
  overrides: Partial<ExtractOptions> = {},
  limits: Partial<ExtractLimits> = {},
) {
  const doc = await extractFile(options(relative, sink, overrides, limits));
  expect(ExtractedDocument.parse(doc)).toEqual(doc);
  return doc;
}

describe.skipIf(!corpus)('corpus PDFs (GEMBATCH_CORPUS_DIR or ../shared/corpus; skipped when absent)', () => {
  it('reads the 30-page Supreme Court slip opinion, OCRing its two image-only appendix pages', async () => {
    const doc = await extractValid('pdfs/legal/scotus-tarrant-v-herrmann-slip-opinion.pdf', undefined, {
      scannedPages: 'vision',
    });
    expect(doc.pages).toHaveLength(30);
    expect(doc.text).toContain('TARRANT REGIONAL WATER DISTRICT');
    expect(doc.meta).toMatchObject({ pages: 30, pages_image: [28, 29] });
    expect(doc.media.map((part) => part.page)).toEqual([28, 29]);
  });

  it.skipIf(tesseractMissing)('OCRs the scanned Tennessee opinion', async () => {
    const doc = await extractValid('pdfs/legal/tn-workers-comp-appeals-opinion-SCANNED.pdf');
    expect(doc.pages).toEqual([{ index: 0, chars: expect.any(Number), source: 'ocr' }]);
    expect(doc.text).toMatch(/WORKERS.? COMPENSATION/);
  });

  it('reads the medical discharge summary and lab report', async () => {
    const discharge = await extractValid('pdfs/medical/discharge-summary-sample.pdf');
    expect(discharge.text).toContain('Discharge Summary');
    expect(discharge.pages).toHaveLength(3);
    const lab = await extractValid('pdfs/medical/labcorp-sample-lab-report.pdf');
    expect(lab.text).toContain('LabCorp');
  });

  it('reads answers that live only in AcroForm fields of the filled IRS form', async () => {
    const doc = await extractValid('pdfs/edge/irs-f1040-2010-filled-acroform.pdf');
    expect(doc.meta.form_fields).toBe(2);
    const secondPage = doc.text.slice(doc.text.indexOf('\n\n', (doc.pages[0]?.chars ?? 0) - 1));
    expect(secondPage).toContain('p2-t124: foobar');
    expect(secondPage).toContain('c1_01_0_: checked');
  });

  it('needs the password "abc" for the encrypted pdf.js test file', async () => {
    await expectErrorCode(
      extractFile(options('pdfs/edge/encrypted-user-password-abc.pdf')),
      'GB_ERR_PDF_PASSWORD_REQUIRED',
    );
    await expectErrorCode(
      extractFile(options('pdfs/edge/encrypted-user-password-abc.pdf', undefined, { password: 'abd' })),
      'GB_ERR_PDF_PASSWORD_INVALID',
    );
    const doc = await extractFile(options('pdfs/edge/encrypted-user-password-abc.pdf', undefined, { password: 'abc' }));
    expect(doc.meta.encrypted).toBe(true);
    expect(doc.pages.length).toBeGreaterThan(0);
  });

  it('refuses the zero-byte, header-only and truncated uploads', async () => {
    await expectErrorCode(extractFile(options('pdfs/edge/zero-bytes.pdf')), 'GB_ERR_EMPTY_INPUT');
    await expectErrorCode(extractFile(options('pdfs/edge/header-then-eof-only.pdf')), 'GB_ERR_PDF_INVALID');
    await expectErrorCode(extractFile(options('pdfs/edge/truncated-40pct-scotus-opinion.pdf')), 'GB_ERR_PDF_INVALID');
  });
});

describe.skipIf(!corpus)('corpus images', () => {
  it('turns the sideways-stored scan with EXIF orientation 6 upright, like the original', async () => {
    const sink = new MemoryBlobSink();
    const original = await extractValid('images/congress-1871-senate-doc-scan.jpg', sink);
    const rotated = await extractValid('images/congress-1871-senate-doc-scan-EXIF-ORIENT6.jpg', sink);
    expect(rotated.meta.exif_orientation).toBe(6);
    const [a, b] = [original.media[0], rotated.media[0]];
    expect([b?.width, b?.height]).toEqual([a?.width, a?.height]);
    const output = await sharp(sink.get(b?.sha256 ?? '')).metadata();
    expect(output.exif).toBeUndefined();
    expect(output.orientation).toBeUndefined();
  });

  it('guards against the 1-bit 4000×2864 PNG (11.5 Mpx in 105 KB) and keeps it lossless when allowed', async () => {
    await expectErrorCode(
      extractFile(options('images/typewriter-1bit-4000x2864.png', undefined, {}, { maxImagePixels: 10_000_000 })),
      'GB_ERR_IMAGE_TOO_LARGE',
    );
    const doc = await extractValid('images/typewriter-1bit-4000x2864.png');
    expect(doc.media[0]).toMatchObject({ mime: 'image/png', width: 1536, height: 1100 });
  });

  it('normalises the OCR test page', async () => {
    const doc = await extractValid('images/tesseractjs-testocr.jpg');
    expect(doc.media).toHaveLength(1);
    expect(doc.media[0]?.mime).toBe('image/jpeg');
  });
});

describe.skipIf(!corpus || ffmpegMissing)('corpus audio', () => {
  it.each([
    ['audio/whispercpp-jfk.wav', 11],
    ['audio/whispercpp-jfk.mp3', 11.09],
    ['audio/openai-whisper-jfk.flac', 11],
    ['audio/sr-english.wav', 2.74],
    ['audio/vosk-test.wav', 8.31],
  ] as const)('decodes %s to one 16 kHz segment', async (relative, seconds) => {
    const doc = await extractValid(relative);
    expect(doc.media).toHaveLength(1);
    // Within 0.1 s of what ffprobe reports for the file.
    expect(Math.abs((doc.meta.duration_s as number) - seconds)).toBeLessThan(0.1);
  });

  it('cuts the 55 s clinic dictation into two segments of at most 30 s, in a pause', async () => {
    const doc = await extractValid('audio/espeak-medical-dictation.wav');
    expect(doc.media).toHaveLength(2);
    const cut = doc.media[0]?.end_s ?? 0;
    expect(cut).toBeLessThanOrEqual(30);
    expect(cut).toBeGreaterThan(27);
    expect(doc.media[1]).toMatchObject({ start_s: cut });
    expect(doc.media[1]?.end_s).toBeCloseTo(doc.meta.duration_s as number, 6);
  });
});
