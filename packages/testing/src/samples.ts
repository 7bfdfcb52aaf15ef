import { mkdir, open, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PDFDocument, StandardFonts, type PDFFont } from 'pdf-lib';
import { GembatchError } from '@gembatch/contracts';
import { mulberry32 } from './gguf/seeded-random.ts';

/** US Letter in PDF points (1/72 in), with one-inch margins. */
const PAGE_WIDTH = 612;
const PAGE_HEIGHT = 792;
const MARGIN = 72;
/** Line height as a multiple of the font size: comfortable reading spacing. */
const LEADING = 1.3;
/** Fixed dates, so the same pages give the same bytes. */
const FIXED_DATE = new Date(Date.UTC(2026, 0, 1));

export interface TextPdfOptions {
  /** Font size in points. Defaults to `11`. */
  fontSize?: number;
  /** Document title (Info dictionary). Defaults to none. */
  title?: string;
}

/**
 * Writes a PDF with a real text layer (Helvetica, a standard font): one page per entry of
 * `pages`, long lines word-wrapped to the margins, `\n` starting new lines. Text that does not
 * fit one page continues on the next, so a page count equals `pages.length` only when each fits.
 * Helvetica encodes WinAnsi (Latin-1 plus a few symbols); other characters throw
 * `GB_ERR_BAD_REQUEST`. Same input, same bytes. Returns `path`.
 */
export async function writeTextPdf(
  path: string,
  pages: readonly string[],
  options: TextPdfOptions = {},
): Promise<string> {
  const fontSize = options.fontSize ?? 11;
  const document = await PDFDocument.create({ updateMetadata: false });
  document.setProducer('gembatch testing');
  document.setCreationDate(FIXED_DATE);
  document.setModificationDate(FIXED_DATE);
  if (options.title !== undefined) document.setTitle(options.title);
  const font = await document.embedFont(StandardFonts.Helvetica);
  const supported = new Set(font.getCharacterSet());
  const lineHeight = fontSize * LEADING;
  const linesPerPage = Math.max(1, Math.floor((PAGE_HEIGHT - 2 * MARGIN) / lineHeight));
  for (const [index, text] of pages.entries()) {
    for (const char of text) {
      const code = char.codePointAt(0) ?? 0;
      if (char !== '\n' && char !== '\r' && char !== '\t' && !supported.has(code)) {
        throw new GembatchError(
          'GB_ERR_BAD_REQUEST',
          `page ${index + 1} has a character Helvetica cannot encode: U+${code.toString(16).toUpperCase().padStart(4, '0')}`,
        );
      }
    }
    const lines = wrapText(text, font, fontSize, PAGE_WIDTH - 2 * MARGIN);
    for (let first = 0; first === 0 || first < lines.length; first += linesPerPage) {
      const page = document.addPage([PAGE_WIDTH, PAGE_HEIGHT]);
      lines.slice(first, first + linesPerPage).forEach((line, row) => {
        if (line !== '')
          page.drawText(line, {
            x: MARGIN,
            y: PAGE_HEIGHT - MARGIN - fontSize - row * lineHeight,
            size: fontSize,
            font,
          });
      });
    }
  }
  if (pages.length === 0) document.addPage([PAGE_WIDTH, PAGE_HEIGHT]);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, await document.save());
  return path;
}

/** Splits text into lines no wider than `maxWidth`: at `\n`, between words, inside over-long words. */
export function wrapText(text: string, font: PDFFont, fontSize: number, maxWidth: number): string[] {
  const width = (value: string) => font.widthOfTextAtSize(value, fontSize);
  const lines: string[] = [];
  for (const paragraph of text.replaceAll('\r\n', '\n').replaceAll('\t', '    ').split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      const candidate = line === '' ? word : `${line} ${word}`;
      if (width(candidate) <= maxWidth) {
        line = candidate;
        continue;
      }
      if (line !== '') lines.push(line);
      line = '';
      let rest = word;
      while (width(rest) > maxWidth) {
        let cut = rest.length - 1;
        while (cut > 1 && width(rest.slice(0, cut)) > maxWidth) cut--;
        lines.push(rest.slice(0, cut));
        rest = rest.slice(cut);
      }
      line = rest;
    }
    lines.push(line);
  }
  return lines;
}

const SUBJECTS = [
  'The patient',
  'The court',
  'The tenant',
  'Our client',
  'The committee',
  'The engineer',
  'The nurse',
  'The company',
  'Each party',
  'The reviewer',
  'The landlord',
  'The witness',
];
const VERBS = [
  'reviewed',
  'signed',
  'described',
  'reported',
  'approved',
  'questioned',
  'received',
  'confirmed',
  'noted',
  'explained',
  'requested',
  'updated',
];
const OBJECTS = [
  'the agreement',
  'the medical history',
  'the final invoice',
  'the annual report',
  'a short summary',
  'the new policy',
  'the test results',
  'the delivery schedule',
  'the written notice',
  'the treatment plan',
  'the budget',
  'the meeting minutes',
];
const TAILS = [
  'before the end of the month',
  'with the help of the office staff',
  'after a long discussion',
  'in accordance with the terms above',
  'during the morning visit',
  'without any further delay',
  'as requested in the previous letter',
  'for the second time this year',
  'while the hearing was adjourned',
  'under the supervision of the senior partner',
];
const CONNECTORS = [
  'However,',
  'In addition,',
  'As a result,',
  'Later that day,',
  'For this reason,',
  'Meanwhile,',
  'In the meantime,',
  'Afterwards,',
];

/**
 * English-looking prose of about `approxWords` words (within one sentence), in paragraphs of
 * four to seven sentences separated by blank lines. Deterministic for a given seed, ASCII only
 * (so it fits a standard-font PDF). Not meaningful, but shaped like real text for tokenizers,
 * chunkers and extractors.
 *
 * @param seed PRNG seed. Defaults to `1`.
 */
export function makeLongText(approxWords: number, seed = 1): string {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const paragraphs: string[] = [];
  let sentences: string[] = [];
  let words = 0;
  let paragraphLength = 4 + Math.floor(random() * 4);
  while (words < approxWords) {
    const subject = pick(SUBJECTS);
    const parts = random() < 0.25 ? [pick(CONNECTORS), subject.charAt(0).toLowerCase() + subject.slice(1)] : [subject];
    parts.push(pick(VERBS), pick(OBJECTS), pick(TAILS));
    if (random() < 0.3) parts.push(`and ${pick(VERBS)} ${pick(OBJECTS)}`);
    const sentence = `${parts.join(' ')}.`;
    sentences.push(sentence);
    words += sentence.split(' ').length;
    if (sentences.length >= paragraphLength) {
      paragraphs.push(sentences.join(' '));
      sentences = [];
      paragraphLength = 4 + Math.floor(random() * 4);
    }
  }
  if (sentences.length > 0) paragraphs.push(sentences.join(' '));
  return paragraphs.join('\n\n');
}

/** Writes `text` as UTF-8 (creating parent directories). Returns `path`. */
export async function writeTextFile(path: string, text: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text, 'utf8');
  return path;
}

/** Writes an empty file. Returns `path`. */
export async function writeZeroByteFile(path: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await (await open(path, 'w')).close();
  return path;
}

/**
 * Writes a text PDF (three pages of `makeLongText`, or `pages`) and cuts it to `fraction` of its
 * bytes, like an interrupted upload: the header is there, the cross-reference table and trailer
 * are not. `fraction` must be in (0, 1), else `GB_ERR_BAD_REQUEST`. Returns `path`.
 */
export async function writeTruncatedPdf(path: string, fraction: number, pages?: readonly string[]): Promise<string> {
  if (!(fraction > 0 && fraction < 1))
    throw new GembatchError('GB_ERR_BAD_REQUEST', `fraction must be between 0 and 1 (exclusive), got ${fraction}`);
  // Three pages of ~300 words: enough bytes that any cut lands inside the document body.
  await writeTextPdf(path, pages ?? [makeLongText(300, 1), makeLongText(300, 2), makeLongText(300, 3)]);
  const { size } = await stat(path);
  await truncate(path, Math.max(1, Math.floor(size * fraction)));
  return path;
}

/** A short fictional business letter (no real people; 555-01xx numbers, example.com mail). */
export const SAMPLE_LETTER = `Harborview Property Management
1200 Example Avenue, Suite 4
Springfield, ZZ 00000

March 3, 2026

Dear Ms. Jordan Avery,

Thank you for your letter of February 20 about the heating in apartment 3B. Our maintenance team
visited on February 24 and replaced the thermostat. Please call our office at (555) 010-0142 or write
to repairs@example.com if the problem returns.

As discussed, the rent for March will be reduced by $150.00 to make up for the days without heat.
Your account number for this adjustment is HV-20931.

Sincerely,

Morgan Lee
Tenant Services Manager`;

/** A short fictional service agreement with parties, dates, amounts and clauses. */
export const SAMPLE_CONTRACT = `SERVICE AGREEMENT

This Service Agreement ("Agreement") is made on January 15, 2026 between Bluefield Analytics LLC,
400 Sample Road, Riverton, ZZ 00000 ("Provider"), and Cedar Hollow Bakery Inc. ("Client").

1. Services. Provider will deliver monthly sales reports and a yearly forecast to Client.
2. Term. This Agreement begins on February 1, 2026 and ends on January 31, 2027, unless ended
   earlier under Section 6.
3. Fees. Client will pay Provider $2,400.00 per month, due within 30 days of each invoice.
4. Confidentiality. Each party will keep the other party's business information confidential
   and use it only to perform this Agreement.
5. Liability. Neither party is liable for indirect or consequential damages.
6. Termination. Either party may end this Agreement with 60 days' written notice.
7. Governing Law. This Agreement is governed by the laws of the State of Example.

Signed:
Riley Chen, Managing Director, Bluefield Analytics LLC
Dana Brooks, Owner, Cedar Hollow Bakery Inc.`;

/** A short fictional clinic note with the identifiers redaction must find (MRN, DOB, phone, email, SSN-shaped number). */
export const SAMPLE_CLINIC_NOTE = `Riverside Family Clinic - Progress Note

Patient: Casey Morgan    DOB: 04/12/1978    MRN: 00482913
Visit date: 2026-02-18   Clinician: Dr. Taylor Nguyen
Phone: 555-010-0177      Email: casey.morgan@example.com    SSN: 123-45-6789

Subjective: Patient reports a dry cough for 10 days and mild fatigue. No fever. Non-smoker.
Objective: BP 128/82, HR 76, Temp 36.8 C, SpO2 98%. Lungs clear on auscultation.
Assessment: Likely post-viral cough.
Plan: Honey and fluids; follow up in 2 weeks or sooner if shortness of breath develops.
Medications: none new. Allergies: penicillin (rash).`;
