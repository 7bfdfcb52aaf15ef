import { GembatchError, type ExtractedDocument, type MediaPart } from '@gembatch/contracts';
import { throwIfAborted } from '../util/abort.ts';
import { normalizeImage, readImageHeader } from './normalize-image.ts';

/** Inputs of `extractImage`. */
export interface ExtractImageInput {
  path: string;
  mime: string;
  maxPixels: number;
  maxSide: number;
  /** Most pages of a multi-page TIFF to keep (the PDF page cap). */
  maxPages: number;
  putBlob(bytes: Buffer, mime: string): Promise<string>;
  signal?: AbortSignal;
}

/** Formats whose pixels are exact (drawings, screenshots, bilevel scans): they stay lossless. */
const LOSSLESS_FORMATS = new Set(['png', 'gif', 'tiff']);

/**
 * Normalises an image file into one image part per page (one for ordinary images; every page of
 * a multi-page TIFF such as a fax, up to the page cap), stored through `putBlob`.
 */
export async function extractImage(input: ExtractImageInput): Promise<ExtractedDocument> {
  const header = await readImageHeader(input.path);
  const isMultiPageDocument = header.format === 'tiff' && header.pages > 1;
  const pageCount = isMultiPageDocument ? Math.min(header.pages, input.maxPages) : 1;
  const warnings: string[] = [];
  if (isMultiPageDocument && header.pages > input.maxPages)
    warnings.push(`the TIFF has ${header.pages} pages; only the first ${input.maxPages} were used`);
  if (!isMultiPageDocument && header.pages > 1)
    warnings.push(`the ${header.format} animation has ${header.pages} frames; only the first was used`);
  const media: MediaPart[] = [];
  for (let page = 0; page < pageCount; page++) {
    throwIfAborted(input.signal);
    const image = await normalizeImage(input.path, {
      maxSide: input.maxSide,
      maxPixels: input.maxPixels,
      lossless: LOSSLESS_FORMATS.has(header.format),
      page,
    });
    const sha256 = await input.putBlob(image.bytes, image.mime);
    media.push({
      kind: 'image',
      sha256,
      mime: image.mime,
      width: image.width,
      height: image.height,
      ...(isMultiPageDocument ? { page } : {}),
    });
  }
  if (media.length === 0) throw new GembatchError('GB_ERR_IMAGE_INVALID', 'the image has no pages');
  return {
    media_type: input.mime,
    text: '',
    pages: isMultiPageDocument ? media.map((_, index) => ({ index, chars: 0, source: 'image' as const })) : [],
    media,
    kinds: ['image'],
    meta: {
      source_format: header.format,
      source_width: header.width,
      source_height: header.height,
      exif_orientation: header.orientation ?? null,
      source_pages: header.pages,
    },
    warnings,
  };
}
