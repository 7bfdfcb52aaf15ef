import { readFile, writeFile } from 'node:fs/promises';
import { PDFArray, PDFDocument, PDFName, PDFNumber, PDFString, StandardFonts } from 'pdf-lib';
import { writeTextPdf } from '../samples.ts';
import { renderTextImage } from './image.ts';
import { runTool } from './run-tool.ts';

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

/** Default lines of a scanned page: distinctive words OCR must find. */
export const SCANNED_PAGE_LINES: readonly string[] = [
  'SCANNED INVOICE 4711',
  'Customer: Acme Hospital',
  'Total due: 1250 EUR',
  'Thank you for your business',
];

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
      page.drawText('It mentions the referral letter and the follow-up appointment.', {
        x: 56,
        y: 720,
        size: 12,
        font,
      });
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
  await runTool('qpdf', ['--encrypt', user, options.ownerPassword, '256', ...restrictions, '--', source, dest]);
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
  for (const [name, checked] of [
    ...(options.checked ?? []).map((n) => [n, true] as const),
    ...(options.unchecked ?? []).map((n) => [n, false] as const),
  ]) {
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
export async function writeBrokenPagePdf(
  path: string,
  options: { pages: number; brokenPage: number },
): Promise<string> {
  const doc = await PDFDocument.load(
    await readFile(await writePagedTextPdf(path, { pages: options.pages, linesPerPage: 5 })),
  );
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
