import type { SharpOptions } from 'sharp';
import { loadSharp } from './load-sharp.ts';
import { GembatchError, errorMessage } from '@gembatch/contracts';

/** An image ready for the model: upright, metadata-free, within the size limit, JPEG or PNG. */
export interface NormalizedImage {
  bytes: Buffer;
  mime: 'image/jpeg' | 'image/png';
  width: number;
  height: number;
}

/** Options of `normalizeImage`. */
export interface NormalizeImageOptions {
  /** Longest side of the output in pixels; smaller images are never enlarged. */
  maxSide: number;
  /** Largest accepted input in pixels (width × height of one page): the decompression-bomb guard. */
  maxPixels: number;
  /** Output PNG (lossless: drawings, screenshots, rendered pages, bilevel scans) instead of JPEG. Defaults to `false`. */
  lossless?: boolean;
  /** Page (frame) of a multi-page TIFF or animated GIF/WebP to take, from 0. Defaults to `0`. */
  page?: number;
  /** Describes raw pixels when `input` is an uncompressed RGBA buffer (a rendered PDF page). Defaults to none. */
  raw?: { width: number; height: number; channels: 1 | 2 | 3 | 4 };
}

// Why 90: visually lossless for photos and scans while ~3× smaller than PNG; models see no difference.
const JPEG_QUALITY = 90;

/**
 * Turns any image sharp decodes (JPEG, PNG, WebP, AVIF, TIFF, GIF) into one the engine decodes
 * safely: EXIF orientation applied, every metadata block (EXIF/GPS, camera, XMP, ICC) dropped,
 * transparency flattened on white, resized so the longest side is at most `maxSide`, encoded as
 * JPEG or PNG. The header is checked against `maxPixels` before any pixel is decoded
 * (`GB_ERR_IMAGE_TOO_LARGE`); truncated or corrupt data fails with `GB_ERR_IMAGE_INVALID`.
 */
export async function normalizeImage(input: string | Buffer, options: NormalizeImageOptions): Promise<NormalizedImage> {
  const sourceOptions: SharpOptions = {
    // 'error' rejects truncated and corrupt data that the default 'warning' level lets through as grey blocks.
    failOn: 'error',
    limitInputPixels: options.maxPixels,
    animated: false,
    page: options.page ?? 0,
    ...(options.raw ? { raw: options.raw } : {}),
  };
  if (!options.raw) await checkHeader(input, options.maxPixels, options.page ?? 0);
  const sharp = await loadSharp();
  try {
    const pipeline = sharp(input, sourceOptions)
      .rotate()
      .resize({ width: options.maxSide, height: options.maxSide, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb');
    const encoded = options.lossless ? pipeline.png({ compressionLevel: 6 }) : pipeline.jpeg({ quality: JPEG_QUALITY });
    const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
    return { bytes: data, mime: options.lossless ? 'image/png' : 'image/jpeg', width: info.width, height: info.height };
  } catch (error) {
    throw classifySharpError(error);
  }
}

/** What the header says about an image, read without decoding pixels. */
export interface ImageHeader {
  format: string;
  width: number;
  height: number;
  /** Number of pages (frames) in a multi-page TIFF or an animation. */
  pages: number;
  /** EXIF orientation tag (1..8) when present. */
  orientation: number | undefined;
  hasAlpha: boolean;
}

/** Reads an image header (format, size, pages, orientation) without decoding pixels; corrupt headers fail with `GB_ERR_IMAGE_INVALID`. */
export async function readImageHeader(input: string | Buffer): Promise<ImageHeader> {
  const sharp = await loadSharp();
  try {
    const meta = await sharp(input, { failOn: 'error', limitInputPixels: false }).metadata();
    const width = meta.width;
    const height = meta.pageHeight ?? meta.height;
    if (!width || !height || !meta.format)
      throw new GembatchError('GB_ERR_IMAGE_INVALID', 'the image header has no size');
    return {
      format: meta.format,
      width,
      height,
      pages: meta.pages ?? 1,
      orientation: meta.orientation,
      hasAlpha: meta.hasAlpha,
    };
  } catch (error) {
    throw classifySharpError(error);
  }
}

async function checkHeader(input: string | Buffer, maxPixels: number, page: number): Promise<void> {
  const header = await readImageHeader(input);
  if (page >= header.pages)
    throw new GembatchError(
      'GB_ERR_IMAGE_INVALID',
      `the image has ${header.pages} page(s); page ${page} does not exist`,
    );
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw new GembatchError(
      'GB_ERR_IMAGE_TOO_LARGE',
      `the image is ${header.width}×${header.height} (${pixels} pixels), above the limit of ${maxPixels}`,
      {
        details: { width: header.width, height: header.height, maxPixels },
      },
    );
  }
}

function classifySharpError(error: unknown): GembatchError {
  if (error instanceof GembatchError) return error;
  const message = errorMessage(error);
  if (/pixel limit/i.test(message))
    return new GembatchError('GB_ERR_IMAGE_TOO_LARGE', 'the image exceeds the pixel limit', { cause: error });
  // sharp's messages name the decoder problem (premature end, bad header) and never carry pixel data.
  return new GembatchError('GB_ERR_IMAGE_INVALID', `the image could not be decoded: ${message.split('\n')[0]}`, {
    cause: error,
  });
}
