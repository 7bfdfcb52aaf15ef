import { stat } from 'node:fs/promises';
import { GembatchError, type ErrorCode, type ExtractedDocument } from '@gembatch/contracts';
import { extractAudio } from './audio/extract-audio.ts';
import { extractImage } from './image/extract-image.ts';
import { joinedDocument, partedDocument, type PartedDocument } from './parted-document.ts';
import { extractPdf } from './pdf/extract-pdf.ts';
import { sniffMediaType, type MediaKind } from './sniff/sniff-media-type.ts';
import { DOCX_MIME, extractDocx } from './text/extract-docx.ts';
import { extractTextFile } from './text/extract-text-file.ts';
import { throwIfAborted } from './util/abort.ts';

/** Caps that keep one file from taking a node down. */
export interface ExtractLimits {
  /**
   * Largest file in bytes; bigger files fail with `GB_ERR_PDF_TOO_LARGE`, `GB_ERR_IMAGE_TOO_LARGE`,
   * `GB_ERR_AUDIO_TOO_LONG` or `GB_ERR_PAYLOAD_TOO_LARGE` (text, video).
   */
  maxBytes: number;
  /** Most pages of a PDF (or multi-page TIFF); a PDF declaring more fails with `GB_ERR_PDF_TOO_LARGE`. */
  maxPages: number;
  /** Largest image (or rendered page) in pixels, checked before decoding: the decompression-bomb guard (`GB_ERR_IMAGE_TOO_LARGE`). */
  maxImagePixels: number;
  /** Longest side of normalised images and rendered pages, in pixels. */
  imageMaxSide: number;
  /** Longest audio in seconds (`GB_ERR_AUDIO_TOO_LONG`). */
  maxAudioSeconds: number;
  /** Longest audio segment handed to the model, in seconds; at most 30. */
  audioSegmentSeconds: number;
}

/** Options of `extractFile`. */
export interface ExtractOptions {
  /** The file on local disk (a blob store path). Its name is never used to decide its type. */
  path: string;
  /** User password of an encrypted PDF. Defaults to none. */
  password?: string;
  limits: ExtractLimits;
  /** 'vision': render scanned pages to images for a multimodal node; 'ocr': tesseract; 'auto': vision when `visionAvailable`, else OCR. */
  scannedPages: 'vision' | 'ocr' | 'auto';
  /** Whether a node with a vision projector will process the result. */
  visionAvailable: boolean;
  /** Stores derived media (normalised images, WAV segments) and returns its sha256: the worker passes the blob store's put. */
  putBlob: (bytes: Buffer, mime: string) => Promise<string>;
  /** Cancels the extraction (`GB_ERR_CANCELLED`): child processes and the PDF worker are killed. Defaults to none. */
  signal?: AbortSignal;
  /**
   * PDF text engine: `auto` uses poppler's pdftotext for large unencrypted files when installed; `pdfjs` never does
   * (benchmarks, tests). Defaults to `auto`.
   */
  pdfTextEngine?: 'auto' | 'pdfjs';
}

/** Defaults for `ExtractLimits`. */
export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = Object.freeze({
  // Why 256 MiB: above nearly every real scan or recording; the PDF worker reads the whole file into its 2 GiB heap.
  maxBytes: 256 * 1024 * 1024,
  // Why 2000: the largest document the extract benchmark proves fast; bigger ones should be split before upload.
  maxPages: 2000,
  // Why 100 Mpx: an A3 page scanned at 600 dpi is ~70 Mpx; decoding 100 Mpx needs ~400 MB, a safe bound per job.
  maxImagePixels: 100_000_000,
  // Why 1536: Gemma's image budget tops out near 1,120 tokens of 48-px patches; larger inputs are downscaled anyway.
  imageMaxSide: 1536,
  // Why 1 hour: a long dictation or hearing; 120 WAV segments of ~1 MB each.
  maxAudioSeconds: 3600,
  // Why 30 s: the audio window Gemma's audio encoder was trained on.
  audioSegmentSeconds: 30,
});

/** Image formats the bundled libvips decodes; anything else (HEIC, BMP, JPEG XL…) is refused by name. */
const SUPPORTED_IMAGE_MIMES = new Set([
  'image/jpeg',
  'image/png',
  'image/apng',
  'image/webp',
  'image/gif',
  'image/tiff',
  'image/avif',
]);

// Why 30: llama.cpp's audio encoders for Gemma take at most 30-second windows.
const MAX_SEGMENT_SECONDS = 30;

const TOO_LARGE_CODE: Readonly<Record<MediaKind, ErrorCode>> = {
  pdf: 'GB_ERR_PDF_TOO_LARGE',
  image: 'GB_ERR_IMAGE_TOO_LARGE',
  audio: 'GB_ERR_AUDIO_TOO_LONG',
  video: 'GB_ERR_PAYLOAD_TOO_LARGE',
  text: 'GB_ERR_PAYLOAD_TOO_LARGE',
  unknown: 'GB_ERR_PAYLOAD_TOO_LARGE',
};

/**
 * Turns a file into model input: sniffs its type from its content, then extracts PDF text
 * (with OCR or page images for scanned pages), normalises images, decodes audio (or a video's
 * audio track) into ≤ 30 s 16 kHz WAV segments, or reads text documents (plain, markdown, HTML,
 * XML, RTF, DOCX). Derived media go to
 * `putBlob`. Heavy work runs off the caller's event loop (a worker thread for pdf.js, child
 * processes for poppler, tesseract and ffmpeg, libvips' thread pool for images). Every failure
 * is a `GembatchError` with a stable code; the result holds document content, so never log it.
 */
export async function extractFile(options: ExtractOptions): Promise<ExtractedDocument> {
  return joinedDocument(await extractFileInParts(options));
}

/** `extractFile` with the text still in parts (a PDF's pages), for the extraction process to send without joining it. */
export async function extractFileInParts(options: ExtractOptions): Promise<PartedDocument> {
  const limits = validateLimits(options.limits);
  throwIfAborted(options.signal);
  let size: number;
  try {
    size = (await stat(options.path)).size;
  } catch (error) {
    throw new GembatchError('GB_ERR_FILE_NOT_FOUND', 'the input file does not exist', { cause: error });
  }
  if (size === 0) throw new GembatchError('GB_ERR_EMPTY_INPUT', 'the file is empty (zero bytes)');
  const sniffed = await sniffMediaType(options.path);
  if (sniffed.kind === 'unknown')
    throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', `unsupported content: detected ${sniffed.detail}`, {
      details: { mime: sniffed.mime },
    });
  if (size > limits.maxBytes) {
    throw new GembatchError(
      TOO_LARGE_CODE[sniffed.kind],
      `the ${sniffed.kind} file is ${size} bytes, above the limit of ${limits.maxBytes}`,
      { details: { bytes: size, maxBytes: limits.maxBytes } },
    );
  }
  const signal = options.signal ? { signal: options.signal } : {};
  switch (sniffed.kind) {
    case 'pdf':
      return extractPdf({
        path: options.path,
        ...(options.password === undefined ? {} : { password: options.password }),
        maxPages: limits.maxPages,
        maxImagePixels: limits.maxImagePixels,
        imageMaxSide: limits.imageMaxSide,
        scannedPages:
          options.scannedPages === 'auto' ? (options.visionAvailable ? 'vision' : 'ocr') : options.scannedPages,
        textEngine: options.pdfTextEngine ?? 'auto',
        putBlob: options.putBlob,
        ...signal,
      });
    case 'image':
      if (!SUPPORTED_IMAGE_MIMES.has(sniffed.mime))
        throw new GembatchError(
          'GB_ERR_UNSUPPORTED_MEDIA',
          `unsupported image format: detected ${sniffed.detail}; convert it to JPEG or PNG`,
          { details: { mime: sniffed.mime } },
        );
      return partedDocument(
        await extractImage({
          path: options.path,
          mime: sniffed.mime,
          maxPixels: limits.maxImagePixels,
          maxSide: limits.imageMaxSide,
          maxPages: limits.maxPages,
          putBlob: options.putBlob,
          ...signal,
        }),
      );
    case 'audio':
    case 'video':
      return partedDocument(
        await extractAudio({
          path: options.path,
          mime: sniffed.mime,
          maxSeconds: limits.maxAudioSeconds,
          segmentSeconds: limits.audioSegmentSeconds,
          putBlob: options.putBlob,
          ...signal,
        }),
      );
    case 'text':
      return partedDocument(
        sniffed.mime === DOCX_MIME
          ? await extractDocx(options.path, limits.maxBytes)
          : await extractTextFile(options.path, sniffed.mime),
      );
  }
}

function validateLimits(limits: ExtractLimits): ExtractLimits {
  const problems: string[] = [];
  for (const key of [
    'maxBytes',
    'maxPages',
    'maxImagePixels',
    'imageMaxSide',
    'maxAudioSeconds',
    'audioSegmentSeconds',
  ] as const) {
    const value = limits[key];
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0))
      problems.push(`${key} must be a positive number`);
  }
  if (limits.audioSegmentSeconds > MAX_SEGMENT_SECONDS)
    problems.push(`audioSegmentSeconds must be at most ${MAX_SEGMENT_SECONDS}`);
  if (problems.length > 0) throw new GembatchError('GB_ERR_CONFIG', `invalid extract limits: ${problems.join('; ')}`);
  return limits;
}
