import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { ExtractedDocument } from '@gembatch/contracts';
import {
  SAMPLE_CAMERA_MAKE,
  tempDir,
  writeMultiPageTiff,
  writeOrientedJpeg,
  writeSampleImage,
  writeTruncatedJpeg,
  type TempDir,
} from '@gembatch/testing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXTRACT_LIMITS, extractFile, type ExtractLimits, type ExtractOptions } from '../src/index.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

let dir: TempDir;
const file = (name: string) => `${dir.path}/${name}`;

function options(path: string, sink: MemoryBlobSink, limits: Partial<ExtractLimits> = {}): ExtractOptions {
  return {
    path,
    limits: { ...DEFAULT_EXTRACT_LIMITS, ...limits },
    scannedPages: 'auto',
    visionAvailable: true,
    putBlob: sink.put,
  };
}

/** Extracts an image file and returns the document and its single normalised image's bytes. */
async function extractOne(path: string, limits: Partial<ExtractLimits> = {}) {
  const sink = new MemoryBlobSink();
  const doc = await extractFile(options(path, sink, limits));
  expect(ExtractedDocument.parse(doc)).toEqual(doc);
  expect(doc.media).toHaveLength(1);
  const part = doc.media[0];
  if (!part) throw new Error('no image part');
  return { doc, part, bytes: sink.get(part.sha256) };
}

/** Mean colour of a region, as [r, g, b]. */
async function meanColour(
  bytes: Buffer,
  region: { left: number; top: number; width: number; height: number },
): Promise<number[]> {
  const { channels } = await sharp(await sharp(bytes).extract(region).toBuffer()).stats();
  return channels.slice(0, 3).map((channel) => Math.round(channel.mean));
}

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-image-');
});

afterAll(async () => {
  await dir.cleanup();
});

describe('image normalisation', () => {
  it('applies EXIF orientation and strips EXIF, GPS and camera data (checked by reading the output back)', async () => {
    const source = await writeOrientedJpeg(file('rotated.jpg'));
    const input = await sharp(source).metadata();
    expect([input.width, input.height, input.orientation]).toEqual([400, 200, 6]);
    expect((await readFile(source)).includes(SAMPLE_CAMERA_MAKE)).toBe(true);

    const { doc, part, bytes } = await extractOne(source);
    expect(doc).toMatchObject({ media_type: 'image/jpeg', kinds: ['image'], text: '', pages: [] });
    expect(doc.meta).toMatchObject({ source_width: 400, source_height: 200, exif_orientation: 6 });
    expect(part).toMatchObject({ kind: 'image', mime: 'image/jpeg', width: 200, height: 400 });
    const output = await sharp(bytes).metadata();
    expect([output.format, output.width, output.height]).toEqual(['jpeg', 200, 400]);
    expect(output.orientation).toBeUndefined();
    expect(output.exif).toBeUndefined();
    expect(output.xmp).toBeUndefined();
    expect(output.icc).toBeUndefined();
    expect(bytes.includes('Exif\0\0')).toBe(false);
    expect(bytes.includes(SAMPLE_CAMERA_MAKE)).toBe(false);
    // Stored red-left/blue-right, orientation 6 (rotate 90° clockwise): upright is red on top.
    const [topRed, , topBlue] = await meanColour(bytes, { left: 50, top: 50, width: 100, height: 100 });
    const [bottomRed, , bottomBlue] = await meanColour(bytes, { left: 50, top: 250, width: 100, height: 100 });
    expect(topRed).toBeGreaterThan(200);
    expect(topBlue).toBeLessThan(60);
    expect(bottomBlue).toBeGreaterThan(200);
    expect(bottomRed).toBeLessThan(60);
  });

  it.each([
    ['webp', 'image/webp', 'jpeg'],
    ['avif', 'image/avif', 'jpeg'],
    ['tiff', 'image/tiff', 'png'],
    ['gif', 'image/gif', 'png'],
    ['png', 'image/png', 'png'],
    ['jpeg', 'image/jpeg', 'jpeg'],
  ] as const)(
    'converts %s to a format the engine decodes and caps the longest side',
    async (format, mime, outFormat) => {
      const { doc, part, bytes } = await extractOne(await writeSampleImage(file(`photo.${format}`), format), {
        imageMaxSide: 512,
      });
      expect(doc.media_type).toBe(mime);
      expect(part.mime).toBe(`image/${outFormat}`);
      const output = await sharp(bytes).metadata();
      expect([output.format, output.width, output.height]).toEqual([outFormat, 512, 384]);
    },
  );

  it('never enlarges small images', async () => {
    const { part } = await extractOne(await writeSampleImage(file('small.png'), 'png', { width: 64, height: 48 }));
    expect([part.width, part.height]).toEqual([64, 48]);
  });

  it('decodes a PNG named .pdf as a PNG', async () => {
    await copyFile(await writeSampleImage(file('real.png'), 'png', { width: 100, height: 80 }), file('scan.pdf'));
    const { doc, part } = await extractOne(file('scan.pdf'));
    expect(doc.media_type).toBe('image/png');
    expect([part.width, part.height]).toEqual([100, 80]);
  });

  it('keeps every page of a multi-page TIFF (a fax), up to the page cap', async () => {
    await writeMultiPageTiff(file('fax.tiff'), 3);
    const sink = new MemoryBlobSink();
    const doc = await extractFile(options(file('fax.tiff'), sink));
    expect(doc.media.map((part) => part.page)).toEqual([0, 1, 2]);
    expect(doc.pages.map((page) => page.source)).toEqual(['image', 'image', 'image']);
    const capped = await extractFile(options(file('fax.tiff'), sink, { maxPages: 2 }));
    expect(capped.media).toHaveLength(2);
    expect(capped.warnings.join(' ')).toContain('3 pages');
  });

  it('refuses decompression bombs from the header, before decoding', async () => {
    const path = await writeSampleImage(file('big.png'), 'png', { width: 4000, height: 3000 });
    const error = await expectErrorCode(
      extractFile(options(path, new MemoryBlobSink(), { maxImagePixels: 10_000_000 })),
      'GB_ERR_IMAGE_TOO_LARGE',
    );
    expect(error.message).toContain('4000×3000');
    await expectErrorCode(
      extractFile(options(path, new MemoryBlobSink(), { maxBytes: 1000 })),
      'GB_ERR_IMAGE_TOO_LARGE',
    );
  });

  it('rejects truncated and corrupt images instead of passing grey blocks on', async () => {
    await expectErrorCode(
      extractFile(options(await writeTruncatedJpeg(file('truncated.jpg')), new MemoryBlobSink())),
      'GB_ERR_IMAGE_INVALID',
    );
    const png = await readFile(await writeSampleImage(file('whole.png'), 'png', { width: 300, height: 300 }));
    const corrupt = Buffer.from(png);
    corrupt.fill(0x5a, 120, corrupt.length - 40);
    await writeFile(file('corrupt.png'), corrupt);
    await expectErrorCode(extractFile(options(file('corrupt.png'), new MemoryBlobSink())), 'GB_ERR_IMAGE_INVALID');
  });

  it('names unsupported image formats', async () => {
    // A 1×1 24-bit BMP: file-type knows it, the bundled libvips cannot decode it.
    const bmp = Buffer.alloc(58);
    bmp.write('BM', 0, 'ascii');
    bmp.writeUInt32LE(58, 2);
    bmp.writeUInt32LE(54, 10);
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(1, 18);
    bmp.writeInt32LE(1, 22);
    bmp.writeUInt16LE(1, 26);
    bmp.writeUInt16LE(24, 28);
    await writeFile(file('pixel.bmp'), bmp);
    const error = await expectErrorCode(
      extractFile(options(file('pixel.bmp'), new MemoryBlobSink())),
      'GB_ERR_UNSUPPORTED_MEDIA',
    );
    expect(error.message).toContain('BMP');
  });
});
