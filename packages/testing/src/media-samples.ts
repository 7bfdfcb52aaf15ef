/**
 * Generators for real media test files: PDFs (text, scanned, mixed, encrypted, filled forms,
 * broken pages, lying page counts, thousands of pages), images (EXIF-rotated with GPS, every
 * input format, truncated, multi-page TIFF) and audio/video (espeak-ng speech through ffmpeg in
 * several containers, tones, silent and video files). Everything is generated on the spot, so a
 * fresh clone tests everything (pair with `tempDir`); system tools (qpdf, ffmpeg, espeak-ng) are checked with
 * `systemToolAvailable` so a test can skip with a reason when one is missing.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32, deflateRawSync } from 'node:zlib';
import { PDFArray, PDFDocument, PDFName, PDFNumber, PDFString, StandardFonts } from 'pdf-lib';
import sharp from 'sharp';
import { findOnPath } from '@gembatch/config';
import { writeTextPdf } from './samples.ts';

const run = promisify(execFile);

/** Whether an executable is on PATH (qpdf, ffmpeg, espeak-ng, tesseract, pdftotext). */
export function systemToolAvailable(name: string): boolean {
  return findOnPath(name) !== null;
}

// US Letter in PDF points (1/72 inch).
const LETTER: [number, number] = [612, 792];

const FILLER = [
  'The parties agree that the terms of this agreement remain in force until terminated in writing.',
  'Payment is due within thirty days of the invoice date unless otherwise stated in the schedule.',
  'All notices shall be delivered to the addresses listed on the first page of this document.',
  'The laboratory reference ranges apply to adults and may differ for pediatric patients.',
  'This record was produced for testing and contains no real personal information whatsoever.',
];

/** Options of `writePagedTextPdf`. */
export interface PagedTextPdfOptions {
  /** Number of pages. */
  pages: number;
  /** Body lines per page (each fits one page at 11 pt). Defaults to `20`. */
  linesPerPage?: number;
}

/** The first line of page `n` (1-based) of a `writePagedTextPdf` file, for assertions. */
export function pagedTextPdfHeading(page: number, pages: number): string {
  return `Page ${page} of ${pages}: section ${page}`;
}

/** Writes a text PDF of `pages` pages (via `writeTextPdf`): a numbered heading and filler lines on each. */
export async function writePagedTextPdf(path: string, options: PagedTextPdfOptions): Promise<string> {
  const lines = options.linesPerPage ?? 20;
  const pages = Array.from({ length: options.pages }, (_, i) => {
    const body = Array.from({ length: lines }, (_, line) => `${line + 1}. ${FILLER[(i + line) % FILLER.length]}`);
    return [pagedTextPdfHeading(i + 1, options.pages), ...body].join('\n');
  });
  return writeTextPdf(path, pages);
}

/** Options of `renderTextImage`. */
export interface TextImageOptions {
  /** Defaults to `1275` (US Letter at 150 dpi). */
  width?: number;
  /** Defaults to `1650`. */
  height?: number;
  /** Defaults to `44` px. */
  fontSize?: number;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Renders lines of black text on white into a greyscale PNG (a stand-in for a scanned page). */
export async function renderTextImage(lines: readonly string[], options: TextImageOptions = {}): Promise<Buffer> {
  const width = options.width ?? 1275;
  const height = options.height ?? 1650;
  const size = options.fontSize ?? 44;
  const text = lines
    .map((line, i) => `<text x="${Math.round(size * 2)}" y="${Math.round(size * 3 + i * size * 1.6)}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="${size}" fill="#000">${escapeXml(line)}</text>`)
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#fff"/>${text}</svg>`;
  return sharp(Buffer.from(svg)).greyscale().png().toBuffer();
}

/** Default lines of a scanned page: distinctive words OCR must find. */
export const SCANNED_PAGE_LINES: readonly string[] = ['SCANNED INVOICE 4711', 'Customer: Acme Hospital', 'Total due: 1250 EUR', 'Thank you for your business'];

/** One page of `writeScannedPdf`: real text, an image-only scan, or nothing. */
export type SamplePageKind = 'text' | 'scan' | 'blank';

/** Options of `writeScannedPdf`. */
export interface ScannedPdfOptions {
  pages: readonly SamplePageKind[];
  /** Lines drawn into each scan image. Defaults to `SCANNED_PAGE_LINES`. */
  scanLines?: readonly string[];
}

/**
 * Writes a PDF whose pages are real text, scans (one page-covering image, no text layer) or
 * blank, in the given order: an image-only PDF, a mixed one, or one with empty pages.
 */
export async function writeScannedPdf(path: string, options: ScannedPdfOptions): Promise<string> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const scan = await doc.embedPng(await renderTextImage(options.scanLines ?? SCANNED_PAGE_LINES));
  options.pages.forEach((kind, index) => {
    const page = doc.addPage(LETTER);
    if (kind === 'text') {
      page.drawText(`Typed page ${index + 1}: this page has a real text layer.`, { x: 56, y: 740, size: 12, font });
      page.drawText('It mentions the referral letter and the follow-up appointment.', { x: 56, y: 720, size: 12, font });
    } else if (kind === 'scan') {
      page.drawImage(scan, { x: 0, y: 0, width: LETTER[0], height: LETTER[1] });
    }
  });
  await writeFile(path, await doc.save());
  return path;
}

/** Options of `writeEncryptedPdf`. */
export interface EncryptedPdfOptions {
  /** Password needed to open the file; empty or absent makes an owner-password-only file that opens without one. */
  userPassword?: string;
  /** Password for changing permissions. */
  ownerPassword: string;
}

/** Encrypts a PDF with qpdf (AES-256); an owner-only file also forbids printing and copying. */
export async function writeEncryptedPdf(source: string, dest: string, options: EncryptedPdfOptions): Promise<string> {
  const user = options.userPassword ?? '';
  const restrictions = user === '' ? ['--print=none', '--extract=n'] : [];
  await run('qpdf', ['--encrypt', user, options.ownerPassword, '256', ...restrictions, '--', source, dest]);
  return dest;
}

/** A field of `writeFilledFormPdf`. */
export interface SampleFormField {
  value: string;
  /** Tooltip (`/TU`), the human label readers show. Defaults to none. */
  tooltip?: string;
}

/** Options of `writeFilledFormPdf`. */
export interface FilledFormPdfOptions {
  /** Text fields by name. */
  fields: Record<string, SampleFormField>;
  /** Names of check boxes to create checked. Defaults to none. */
  checked?: readonly string[];
  /** Names of check boxes to create unchecked. Defaults to none. */
  unchecked?: readonly string[];
}

/** Labels printed on a `writeFilledFormPdf` page (its text layer); the answers live only in the fields. */
export const FORM_PAGE_LABEL = 'Patient intake form';

/** Writes a one-page AcroForm whose answers exist only as field values, not in the page's text. */
export async function writeFilledFormPdf(path: string, options: FilledFormPdfOptions): Promise<string> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const page = doc.addPage(LETTER);
  page.drawText(FORM_PAGE_LABEL, { x: 56, y: 740, size: 16, font });
  const form = doc.getForm();
  let y = 690;
  for (const [name, field] of Object.entries(options.fields)) {
    page.drawText(`${field.tooltip ?? name}:`, { x: 56, y: y + 6, size: 10, font });
    const text = form.createTextField(name);
    text.setText(field.value);
    text.addToPage(page, { x: 220, y, width: 300, height: 22, font });
    // On the widget, where readers (pdf.js included) look for it; pdf-lib keeps field and widget apart.
    if (field.tooltip) text.acroField.getWidgets()[0]?.dict.set(PDFName.of('TU'), PDFString.of(field.tooltip));
    y -= 40;
  }
  for (const [name, checked] of [...(options.checked ?? []).map((n) => [n, true] as const), ...(options.unchecked ?? []).map((n) => [n, false] as const)]) {
    page.drawText(`${name}:`, { x: 56, y: y + 4, size: 10, font });
    const box = form.createCheckBox(name);
    box.addToPage(page, { x: 220, y, width: 14, height: 14 });
    if (checked) box.check();
    y -= 30;
  }
  form.updateFieldAppearances(font);
  await writeFile(path, await doc.save());
  return path;
}

/**
 * Writes a text PDF in which one page (0-based `brokenPage`) is unreadable: its entry in the page
 * tree points at a number instead of a page dictionary, so readers fail on that page only.
 */
export async function writeBrokenPagePdf(path: string, options: { pages: number; brokenPage: number }): Promise<string> {
  const doc = await PDFDocument.load(await readFile(await writePagedTextPdf(path, { pages: options.pages, linesPerPage: 5 })));
  const kids = doc.catalog.Pages().lookup(PDFName.of('Kids'), PDFArray);
  kids.set(options.brokenPage, doc.context.register(PDFNumber.of(42)));
  await writeFile(path, await doc.save({ useObjectStreams: false }));
  return path;
}

/** Writes a short text PDF whose page tree declares `declaredPages` pages (e.g. 200 million) while holding only a few. */
export async function writeLyingPageCountPdf(path: string, declaredPages: number): Promise<string> {
  const doc = await PDFDocument.load(await readFile(await writePagedTextPdf(path, { pages: 3, linesPerPage: 3 })));
  doc.catalog.Pages().set(PDFName.of('Count'), PDFNumber.of(declaredPages));
  await writeFile(path, await doc.save({ useObjectStreams: false }));
  return path;
}

/** Writes a PDF with a page tree and zero pages. */
export async function writeZeroPagePdf(path: string): Promise<string> {
  const doc = await PDFDocument.create();
  // pdf-lib adds a blank page to empty documents unless told not to.
  await writeFile(path, await doc.save({ useObjectStreams: false, addDefaultPage: false }));
  return path;
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
  const left = await sharp({ create: { width: Math.floor(width / 2), height, channels: 3, background: '#ff0000' } }).png().toBuffer();
  await sharp({ create: { width, height, channels: 3, background: '#0000ff' } })
    .composite([{ input: left, left: 0, top: 0 }])
    .jpeg({ quality: 92 })
    .withExif({
      IFD0: { Make: SAMPLE_CAMERA_MAKE, Model: 'Model X1' },
      // IFD3 is the GPS directory in libvips' numbering.
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '52/1 31/1 1234/100', GPSLongitudeRef: 'E', GPSLongitude: '13/1 24/1 0/1' },
    })
    .withMetadata({ orientation: options.orientation ?? 6 })
    .toFile(path);
  return path;
}

/** Image formats `writeSampleImage` can write. */
export type SampleImageFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'tiff' | 'gif';

/** Writes a colourful gradient-like image (`width`×`height`, default 1600×1200) in the given format. */
export async function writeSampleImage(path: string, format: SampleImageFormat, size: { width?: number; height?: number } = {}): Promise<string> {
  const width = size.width ?? 1600;
  const height = size.height ?? 1200;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs><linearGradient id="g"><stop offset="0" stop-color="#2a6"/><stop offset="1" stop-color="#e83"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/><circle cx="${width / 2}" cy="${height / 2}" r="${Math.min(width, height) / 4}" fill="#fff"/></svg>`;
  await sharp(Buffer.from(svg)).toFormat(format).toFile(path);
  return path;
}

/** Writes a JPEG cut off after `keepFraction` (default 0.6) of its bytes, like an interrupted upload. */
export async function writeTruncatedJpeg(path: string, keepFraction = 0.6): Promise<string> {
  const full = await sharp(await readFile(await writeSampleImage(path, 'jpeg', { width: 800, height: 600 }))).jpeg({ quality: 95 }).toBuffer();
  await writeFile(path, full.subarray(0, Math.floor(full.length * keepFraction)));
  return path;
}

/** Writes a multi-page TIFF (a fax-like document) with `pages` pages of text. */
export async function writeMultiPageTiff(path: string, pages: number): Promise<string> {
  const frames = await Promise.all(Array.from({ length: pages }, (_, i) => renderTextImage([`Fax page ${i + 1}`], { width: 850, height: 1100 })));
  await sharp(frames, { join: { animated: true } }).tiff().toFile(path);
  return path;
}

/** Audio containers `writeSpeech` can produce. `m4a` keeps ffmpeg's default layout: the moov index at the end. */
export type SpeechFormat = 'wav' | 'mp3' | 'flac' | 'opus' | 'm4a' | 'ogg';

const SPEECH_ENCODERS: Record<SpeechFormat, string[]> = {
  wav: ['-c:a', 'pcm_s16le'],
  mp3: ['-c:a', 'libmp3lame', '-b:a', '64k'],
  flac: ['-c:a', 'flac'],
  opus: ['-c:a', 'libopus', '-b:a', '32k'],
  m4a: ['-c:a', 'aac', '-b:a', '64k'],
  ogg: ['-c:a', 'libvorbis', '-q:a', '3'],
};

/** Default sentence of `writeSpeech`. */
export const SAMPLE_SPEECH = 'The patient reports mild pain in the left knee since Tuesday.';

/**
 * Speaks `text` with espeak-ng (22.05 kHz WAV), then converts it with ffmpeg into each requested
 * container; returns the path of each file by format.
 */
export async function writeSpeech(dir: string, formats: readonly SpeechFormat[], text = SAMPLE_SPEECH): Promise<Record<SpeechFormat, string>> {
  const source = join(dir, 'speech-espeak.wav');
  await run('espeak-ng', ['-v', 'en-us', '-s', '160', '-w', source, text]);
  const out = {} as Record<SpeechFormat, string>;
  for (const format of formats) {
    const target = join(dir, `speech.${format}`);
    await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', source, ...SPEECH_ENCODERS[format], target]);
    out[format] = target;
  }
  return out;
}

/** Writes `seconds` of a 440 Hz tone as a 44.1 kHz stereo WAV (long audio for segmenting and caps). */
export async function writeToneWav(path: string, seconds: number): Promise<string> {
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=44100:duration=${seconds}`, '-ac', '2', path]);
  return path;
}

/** Writes a WAV file with a valid header and no samples. */
export async function writeEmptyWav(path: string): Promise<string> {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36, 4);
  header.write('WAVEfmt ', 8, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(16000, 24);
  header.writeUInt32LE(32000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(0, 40);
  await writeFile(path, header);
  return path;
}

/** Options of `writeVideo`. */
export interface VideoOptions {
  /** Audio track to mux in (a file path), or none for a silent video. */
  audioFrom?: string;
  /** Video length in seconds when there is no audio. Defaults to `2`. */
  seconds?: number;
}

/** Writes a small H.264 MP4 test pattern, with the given audio as an AAC track (video cut to its length) or without any audio stream. */
export async function writeVideo(path: string, options: VideoOptions = {}): Promise<string> {
  // With audio, the pattern runs long and `-shortest` trims it to the audio's length.
  const seconds = options.audioFrom ? 600 : (options.seconds ?? 2);
  const inputs = ['-f', 'lavfi', '-i', `testsrc=size=320x240:rate=10:duration=${seconds}`, ...(options.audioFrom ? ['-i', options.audioFrom] : [])];
  const audio = options.audioFrom ? ['-c:a', 'aac', '-shortest'] : ['-an'];
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...inputs, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', ...audio, path]);
  return path;
}

/**
 * Writes a ZIP archive (deflated entries, no ZIP64) from names and contents: the container of
 * DOCX, XLSX and PPTX files.
 */
export async function writeZipFile(path: string, entries: Record<string, string | Buffer>): Promise<string> {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(entries)) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
    const compressed = deflateRawSync(data);
    const nameBytes = Buffer.from(name, 'utf8');
    const checksum = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(checksum, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(8, 10);
    entry.writeUInt32LE(checksum, 16);
    entry.writeUInt32LE(compressed.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, compressed);
    central.push(entry, nameBytes);
    offset += local.length + nameBytes.length + compressed.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  await writeFile(path, Buffer.concat([...locals, directory, end]));
  return path;
}

/** Options of `writeDocx`. */
export interface DocxOptions {
  paragraphs: readonly string[];
  /** A table after the paragraphs, as rows of cell texts. Defaults to none. */
  table?: ReadonlyArray<readonly string[]>;
  /** Bytes of whitespace added inside the body XML: inflates far beyond the file size (a zip bomb). Defaults to `0`. */
  bodyPadding?: number;
}

/** Writes a minimal valid Word document (DOCX): the content types, package relationships and a body with paragraphs and a table. */
export async function writeDocx(path: string, options: DocxOptions): Promise<string> {
  const paragraph = (text: string) => `<w:p><w:r><w:t xml:space="preserve">${escapeXml(text)}</w:t></w:r></w:p>`;
  const table = options.table ? `<w:tbl>${options.table.map((row) => `<w:tr>${row.map((cell) => `<w:tc>${paragraph(cell)}</w:tc>`).join('')}</w:tr>`).join('')}</w:tbl>` : '';
  const body = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${options.paragraphs.map(paragraph).join('')}${table}${' '.repeat(options.bodyPadding ?? 0)}</w:body></w:document>`;
  return writeZipFile(path, {
    '[Content_Types].xml':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
    '_rels/.rels':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
    'word/document.xml': body,
  });
}
