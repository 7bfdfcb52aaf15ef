import { readFile, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { escapeXml } from './xml-text.ts';

/** Options of `renderTextImage`. */
export interface TextImageOptions {
  /** Defaults to `1275` (US Letter at 150 dpi). */
  width?: number;
  /** Defaults to `1650`. */
  height?: number;
  /** Defaults to `44` px. */
  fontSize?: number;
}

/** Renders lines of black text on white into a greyscale PNG (a stand-in for a scanned page). */
export async function renderTextImage(lines: readonly string[], options: TextImageOptions = {}): Promise<Buffer> {
  const width = options.width ?? 1275;
  const height = options.height ?? 1650;
  const size = options.fontSize ?? 44;
  const text = lines
    .map(
      (line, i) =>
        `<text x="${Math.round(size * 2)}" y="${Math.round(size * 3 + i * size * 1.6)}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="${size}" fill="#000">${escapeXml(line)}</text>`,
    )
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#fff"/>${text}</svg>`;
  return sharp(Buffer.from(svg)).greyscale().png().toBuffer();
}

/** Options of `writeOrientedJpeg`. */
export interface OrientedJpegOptions {
  /** EXIF orientation tag, 1..8. Defaults to `6` (stored sideways: display rotated 90° clockwise). */
  orientation?: number;
  /** Stored width. Defaults to `400`. */
  width?: number;
  /** Stored height. Defaults to `200`. */
  height?: number;
}

/** Camera make written by `writeOrientedJpeg`; it must not survive normalisation. */
export const SAMPLE_CAMERA_MAKE = 'GembatchCam';

/**
 * Writes a JPEG whose stored pixels are red on the left half and blue on the right, with EXIF
 * orientation, camera make/model and GPS coordinates. With orientation 6 an upright rendering is
 * portrait with red on top.
 */
export async function writeOrientedJpeg(path: string, options: OrientedJpegOptions = {}): Promise<string> {
  const width = options.width ?? 400;
  const height = options.height ?? 200;
  const left = await sharp({ create: { width: Math.floor(width / 2), height, channels: 3, background: '#ff0000' } })
    .png()
    .toBuffer();
  await sharp({ create: { width, height, channels: 3, background: '#0000ff' } })
    .composite([{ input: left, left: 0, top: 0 }])
    .jpeg({ quality: 92 })
    .withExif({
      IFD0: { Make: SAMPLE_CAMERA_MAKE, Model: 'Model X1' },
      // IFD3 is the GPS directory in libvips' numbering.
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '52/1 31/1 1234/100',
        GPSLongitudeRef: 'E',
        GPSLongitude: '13/1 24/1 0/1',
      },
    })
    .withMetadata({ orientation: options.orientation ?? 6 })
    .toFile(path);
  return path;
}

/** Image formats `writeSampleImage` can write. */
export type SampleImageFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'tiff' | 'gif';

/** Writes a colourful gradient-like image (`width`×`height`, default 1600×1200) in the given format. */
export async function writeSampleImage(
  path: string,
  format: SampleImageFormat,
  size: { width?: number; height?: number } = {},
): Promise<string> {
  const width = size.width ?? 1600;
  const height = size.height ?? 1200;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs><linearGradient id="g"><stop offset="0" stop-color="#2a6"/><stop offset="1" stop-color="#e83"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/><circle cx="${width / 2}" cy="${height / 2}" r="${Math.min(width, height) / 4}" fill="#fff"/></svg>`;
  await sharp(Buffer.from(svg)).toFormat(format).toFile(path);
  return path;
}

/** Writes a JPEG cut off after `keepFraction` (default 0.6) of its bytes, like an interrupted upload. */
export async function writeTruncatedJpeg(path: string, keepFraction = 0.6): Promise<string> {
  const full = await sharp(await readFile(await writeSampleImage(path, 'jpeg', { width: 800, height: 600 })))
    .jpeg({ quality: 95 })
    .toBuffer();
  await writeFile(path, full.subarray(0, Math.floor(full.length * keepFraction)));
  return path;
}

/** Writes a multi-page TIFF (a fax-like document) with `pages` pages of text. */
export async function writeMultiPageTiff(path: string, pages: number): Promise<string> {
  const frames = await Promise.all(
    Array.from({ length: pages }, (_, i) => renderTextImage([`Fax page ${i + 1}`], { width: 850, height: 1100 })),
  );
  await sharp(frames, { join: { animated: true } })
    .tiff()
    .toFile(path);
  return path;
}
