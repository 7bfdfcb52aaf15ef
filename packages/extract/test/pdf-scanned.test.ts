import { ExtractedDocument } from '@gembatch/contracts';
import { SCANNED_PAGE_LINES, systemToolAvailable, tempDir, writeScannedPdf, type TempDir } from '@gembatch/testing';
import sharp from 'sharp';
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
    scannedPages: 'auto',
    visionAvailable: false,
    putBlob: new MemoryBlobSink().put,
    ...overrides,
  };
}

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-scan-');
  await writeScannedPdf(file('mixed.pdf'), { pages: ['text', 'scan', 'blank'] });
  await writeScannedPdf(file('scans.pdf'), { pages: ['scan', 'scan'] });
  await writeScannedPdf(file('blank.pdf'), { pages: ['blank', 'blank'] });
});

afterAll(async () => {
  await dir.cleanup();
});

describe('scanned PDF pages', () => {
  it.skipIf(!systemToolAvailable('tesseract'))(
    'are OCRed when no vision model is available, and the result says which',
    async () => {
      const doc = await extractFile(options(file('mixed.pdf')));
      expect(ExtractedDocument.parse(doc)).toEqual(doc);
      expect(doc.pages.map((page) => page.source)).toEqual(['text', 'ocr', 'text']);
      expect(doc.meta).toMatchObject({ pages_ocr: [1], pages_image: [] });
      expect(doc.text).toContain('real text layer');
      expect(doc.text).toContain('4711');
      expect(doc.text).toMatch(/Acme Hospital/);
      expect(doc.media).toEqual([]);
      expect(doc.kinds).toEqual(['text']);
    },
  );

  it('are rendered to images for a vision model, one image part per scanned page', async () => {
    const sink = new MemoryBlobSink();
    const doc = await extractFile(options(file('mixed.pdf'), { visionAvailable: true, putBlob: sink.put }));
    expect(ExtractedDocument.parse(doc)).toEqual(doc);
    expect(doc.pages.map((page) => page.source)).toEqual(['text', 'image', 'text']);
    expect(doc.meta).toMatchObject({ pages_ocr: [], pages_image: [1] });
    expect(doc.kinds).toEqual(['text', 'image']);
    expect(doc.media).toHaveLength(1);
    const part = doc.media[0];
    expect(part).toMatchObject({ kind: 'image', mime: 'image/png', page: 1 });
    const image = await sharp(sink.get(part?.sha256 ?? '')).metadata();
    expect(image.format).toBe('png');
    expect(Math.max(image.width, image.height)).toBe(DEFAULT_EXTRACT_LIMITS.imageMaxSide);
    expect([image.width, image.height]).toEqual([part?.width, part?.height]);
    // A rendered scan is mostly white paper with dark text: not a blank or black canvas.
    const { channels } = await sharp(sink.get(part?.sha256 ?? '')).stats();
    expect(channels[0]?.mean).toBeGreaterThan(200);
    expect(channels[0]?.min).toBeLessThan(60);
  });

  it('follow an explicit mode over the vision flag', async () => {
    const doc = await extractFile(options(file('scans.pdf'), { scannedPages: 'vision', visionAvailable: false }));
    expect(doc.media.map((part) => part.page)).toEqual([0, 1]);
    expect(doc.kinds).toEqual(['image']);
    expect(doc.text.trim()).toBe('');
  });

  it('stop with GB_ERR_CANCELLED when the job is cancelled mid-document', async () => {
    const controller = new AbortController();
    const sink = new MemoryBlobSink();
    const work = extractFile(
      options(file('scans.pdf'), {
        scannedPages: 'vision',
        signal: controller.signal,
        putBlob: async (bytes, mime) => {
          controller.abort();
          return sink.put(bytes, mime);
        },
      }),
    );
    await expectErrorCode(work, 'GB_ERR_CANCELLED');
    expect(sink.blobs.size).toBe(1);
  });

  it('are not confused with blank pages: a PDF with neither text nor scans has no text', async () => {
    await expectErrorCode(extractFile(options(file('blank.pdf'))), 'GB_ERR_NO_TEXT');
  });

  it.skipIf(!systemToolAvailable('tesseract'))('keep the text OCR found in the order of the page', async () => {
    const doc = await extractFile(options(file('scans.pdf'), { scannedPages: 'ocr' }));
    const lines = doc.text.split('\n').filter((line) => line.trim() !== '');
    expect(lines.indexOf(SCANNED_PAGE_LINES[0] ?? '')).toBeGreaterThanOrEqual(0);
    expect(doc.pages.map((page) => page.source)).toEqual(['ocr', 'ocr']);
  });
});
