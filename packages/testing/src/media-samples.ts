/**
 * Generators for real media test files: PDFs (text, scanned, mixed, encrypted, filled forms,
 * broken pages, lying page counts, thousands of pages), images (EXIF-rotated with GPS, every
 * input format, truncated, multi-page TIFF) and audio/video (espeak-ng speech through ffmpeg in
 * several containers, tones, silent and video files). Everything is generated on the spot, so a
 * fresh clone tests everything (pair with `tempDir`); system tools (qpdf, ffmpeg, espeak-ng) are checked with
 * `systemToolAvailable` so a test can skip with a reason when one is missing.
 */
export * from './media-samples/pdf.ts';
export * from './media-samples/image.ts';
export * from './media-samples/audio.ts';
export * from './media-samples/text.ts';
export { systemToolAvailable } from './media-samples/run-tool.ts';
export { writeZipFile } from './zip-archive.ts';
