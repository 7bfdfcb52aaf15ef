import { GembatchError, type MediaPart, errorMessage } from '@gembatch/contracts';
import { loadSharp } from '../image/load-sharp.ts';
import type { PartedDocument } from '../parted-document.ts';
import { normalizeImage } from '../image/normalize-image.ts';
import { ocrImage, tesseractAvailable } from '../ocr/tesseract.ts';
import { throwIfAborted } from '../util/abort.ts';
import { classifyPdfOpenError } from './classify-pdf-error.ts';
import { countVisibleChars } from './page-text-layout.ts';
import { PdfJsError, PdfWorkerClient, type PdfWorkerOptions } from './pdf-worker-client.ts';
import type { FormFieldValue, PdfOpenResult } from './pdf-worker-protocol.ts';
import { popplerAvailable, pdftotextFrom, pdftotextPages, readPdfinfo } from './pdftotext.ts';

/** Inputs of `extractPdf`. */
export interface ExtractPdfInput {
  path: string;
  password?: string;
  maxPages: number;
  maxImagePixels: number;
  imageMaxSide: number;
  /** What to do with scanned pages (already resolved from `auto`). */
  scannedPages: 'vision' | 'ocr';
  /** `auto`: poppler's pdftotext for large unencrypted files when installed; `pdfjs`: pdf.js only. */
  textEngine: 'auto' | 'pdfjs';
  putBlob(bytes: Buffer, mime: string): Promise<string>;
  signal?: AbortSignal;
}

type PageSource = 'text' | 'ocr' | 'image' | 'error';

interface PageRecord {
  index: number;
  text: string;
  source: PageSource;
}

// Why 30: fewer visible characters than a short sentence means there is no real text layer (page numbers, stamps).
const SCANNED_MAX_CHARS = 30;
// Why 0.3: scans placed with margins still cover well over a third of the page; logos and photos in text pages do not.
const SCANNED_MIN_IMAGE_COVERAGE = 0.3;
// Why 50: below it pdf.js is within ~100 ms of pdftotext; above it pdf.js time grows super-linearly with pages.
const FAST_PATH_MIN_PAGES = 50;
// Why 500 pages: each pdftotext run reparses the cross-reference table (~13 % extra CPU at 250-page ranges),
// while a range's text stays a few megabytes; two ranges run at once, one taken from each end of the document.
const FAST_PATH_RANGE_PAGES = 500;
// Why 120 s: pdftotext handles hundreds of pages per second; only a pathological file needs longer.
const POPPLER_TIMEOUT_MS = 120_000;
// Why 60 s: pdf.js reads an ordinary page in milliseconds; a page taking a minute is hostile.
const PAGE_TIMEOUT_MS = 60_000;
// Why 120 s: rendering decodes every image on the page, which can take tens of seconds for huge scans.
const RENDER_TIMEOUT_MS = 120_000;
// Why 200 dpi: tesseract's accuracy drops below ~150 dpi for body text; 300 dpi costs 1.7× the time for little gain.
const OCR_DPI = 200;
// Why 35 Mpx: an A3 page at 300 dpi is ~17 Mpx; larger renders only make tesseract run into its timeout.
const OCR_MAX_PIXELS = 35_000_000;
// Why 180 s: tesseract takes 2–8 s for a dense 300-dpi page on one core; this only stops runaway pages.
const OCR_TIMEOUT_MS = 180_000;
// Why 2: tesseract runs single-threaded (OMP_THREAD_LIMIT=1), so two pages in flight keep two cores busy while the next page renders.
const OCR_CONCURRENCY = 2;
// Why 3: one slow or crashing page is recovered from; a document that kills the parser repeatedly is abandoned.
const MAX_WORKER_RESTARTS = 3;
// Why 20: enough page numbers to find the problem without a warning growing with a hostile page count.
const LISTED_PAGES = 20;

/**
 * Extracts a PDF page by page: pdf.js in a worker thread, or, for large unencrypted documents
 * when poppler is installed, pdftotext by page range (the worker then starts only if a page looks
 * scanned or the PDF has a form). A page that fails or hangs is marked `error` and the rest are
 * read; pages pdf.js loses behind a broken page tree are recovered with poppler; damaged files
 * pdf.js cannot open at all are read by poppler when it can. AcroForm values are appended to
 * their page's text; scanned pages (almost no text, mostly image) are rendered for a vision model
 * or OCRed. The text is in parts, one per page (`PartedDocument`): joined with blank lines, page `i` starts at
 * `sum(chars of pages before i) + 2 × i`.
 */
export async function extractPdf(input: ExtractPdfInput): Promise<PartedDocument> {
  const usePoppler = input.textEngine === 'auto' && input.password === undefined && popplerAvailable();
  const popplerInfo = usePoppler ? await readPdfinfo(input.path, popplerOptions(input.signal)) : undefined;
  if (popplerInfo && popplerInfo.pages > input.maxPages) throw tooManyPages(popplerInfo.pages, input.maxPages);
  if (popplerInfo && popplerInfo.pages >= FAST_PATH_MIN_PAGES) {
    const texts = await readWithPdftotext(input.path, popplerInfo.pages, input.signal);
    // Every range printing exactly its pages means poppler's numbering is the document's; otherwise pdf.js reads it all.
    if (texts.every((text) => text !== undefined))
      return new PdfPageReader(input, popplerInfo, undefined, texts, false).read();
  }
  let opened: { client: PdfWorkerClient; info: PdfOpenResult };
  try {
    opened = await PdfWorkerClient.open(workerOptions(input));
  } catch (error) {
    const classified = classifyPdfOpenError(error, input.password !== undefined);
    if (classified.code === 'GB_ERR_PDF_INVALID' && usePoppler) {
      const recovered = await recoverWithPoppler(input.path, popplerInfo?.pages, input.signal);
      if (recovered) return recovered;
    }
    throw classified;
  }
  const { client, info } = opened;
  try {
    if (info.pages === 0) throw new GembatchError('GB_ERR_PDF_EMPTY', 'the PDF has no pages');
    if (info.pages > input.maxPages) throw tooManyPages(info.pages, input.maxPages);
    const readTail = popplerInfo !== undefined && popplerInfo.pages > info.pages;
    return await new PdfPageReader(input, info, client, undefined, readTail).read();
  } finally {
    await client.close();
  }
}

function workerOptions(input: ExtractPdfInput): PdfWorkerOptions {
  return {
    path: input.path,
    maxImagePixels: input.maxImagePixels,
    ...(input.password === undefined ? {} : { password: input.password }),
    ...(input.signal ? { signal: input.signal } : {}),
  };
}

function tooManyPages(pages: number, maxPages: number): GembatchError {
  return new GembatchError('GB_ERR_PDF_TOO_LARGE', `the PDF declares ${pages} pages, above the limit of ${maxPages}`, {
    details: { pages, maxPages },
  });
}

function popplerOptions(signal: AbortSignal | undefined) {
  return { timeoutMs: POPPLER_TIMEOUT_MS, ...(signal ? { signal } : {}) };
}

/**
 * pdftotext over all pages in ranges, two at a time: one lane reads from the first page forwards,
 * the other from the last page backwards. pdftotext caches the page tree up to the last page it
 * reads (13 MiB resident for pages 1–500 of a 20,000-page file, 43 MiB for pages 19,501–20,000),
 * so two lanes both near the end held ~87 MiB; from opposite ends their sum stays near one
 * whole-document process (~58 MiB). A range in which poppler skipped
 * a damaged page is halved until the damaged page stands alone, so every other page keeps its
 * text; pages it cannot read are left `undefined` (pdf.js tries them, else they are errors).
 */
async function readWithPdftotext(
  path: string,
  pages: number,
  signal: AbortSignal | undefined,
): Promise<Array<string | undefined>> {
  const texts = new Array<string | undefined>(pages);
  const ranges: Array<[number, number]> = [];
  for (let first = 0; first < pages; first += FAST_PATH_RANGE_PAGES)
    ranges.push([first, Math.min(pages, first + FAST_PATH_RANGE_PAGES) - 1]);
  const readRange = async (first: number, last: number): Promise<void> => {
    const result = await pdftotextPages(path, first, last, popplerOptions(signal));
    if (Array.isArray(result)) {
      result.forEach((text, offset) => {
        texts[first + offset] = text;
      });
    } else if (result === 'mismatch' && first < last) {
      const middle = Math.floor((first + last) / 2);
      await readRange(first, middle);
      await readRange(middle + 1, last);
    }
  };
  const lane = async (take: () => [number, number] | undefined): Promise<void> => {
    for (let range = take(); range; range = take()) await readRange(range[0], range[1]);
  };
  await Promise.all([lane(() => ranges.shift()), lane(() => ranges.pop())]);
  return texts;
}

/** When pdf.js cannot parse a damaged file at all, poppler often still reads most pages. */
async function recoverWithPoppler(
  path: string,
  pages: number | undefined,
  signal: AbortSignal | undefined,
): Promise<PartedDocument | undefined> {
  const texts = pages !== undefined && pages > 0 ? await readWithPdftotext(path, pages, signal) : undefined;
  if (!texts || texts.every((text) => text === undefined || countVisibleChars(text) === 0)) return undefined;
  const records: PageRecord[] = texts.map((text, index) => ({
    index,
    text: text ?? '',
    source: text === undefined ? 'error' : 'text',
  }));
  const failed = records.filter((record) => record.source === 'error').map((record) => record.index);
  const warnings = [
    'pdf.js could not parse the PDF; the text was recovered with poppler (form fields and scanned pages were not examined)',
  ];
  if (failed.length > 0) warnings.push(describePages(failed, 'could not be read'));
  return assemble(
    records,
    [],
    { pages: records.length, text_engine: 'pdftotext', recovered: true, pages_error: failed },
    warnings,
  );
}

function describePages(indexes: readonly number[], what: string): string {
  const listed = indexes
    .slice(0, LISTED_PAGES)
    .map((index) => index + 1)
    .join(', ');
  const more = indexes.length > LISTED_PAGES ? ` and ${indexes.length - LISTED_PAGES} more` : '';
  return `${indexes.length} page(s) ${what}: ${listed}${more}`;
}

function assemble(
  records: readonly PageRecord[],
  media: MediaPart[],
  meta: Record<string, unknown>,
  warnings: string[],
): PartedDocument {
  const kinds: PartedDocument['document']['kinds'] = [];
  // A test, not a count: counting rebuilds the text without its whitespace, hundreds of megabytes at 20,000 pages.
  if (records.some((record) => /\S/.test(record.text))) kinds.push('text');
  if (media.length > 0) kinds.push('image');
  return {
    document: {
      media_type: 'application/pdf',
      text: '',
      pages: records.map((record) => ({ index: record.index, chars: record.text.length, source: record.source })),
      media,
      kinds,
      meta,
      warnings,
    },
    // Pages joined by a blank line are the text (`joinedDocument`); not joined here, see `PartedDocument`.
    textParts: records.map((record) => record.text),
  };
}

/**
 * Reads every page of a document, recovering from pages that fail, hang or crash the worker.
 * The pdf.js worker is either given (already open) or started on first need (fast path).
 */
class PdfPageReader {
  readonly #input: ExtractPdfInput;
  readonly #info: PdfOpenResult;
  readonly #fast: Array<string | undefined> | undefined;
  readonly #readTailWithPoppler: boolean;
  readonly #records: PageRecord[] = [];
  readonly #media: MediaPart[] = [];
  readonly #warnings: string[] = [];
  readonly #ocrInFlight = new Set<Promise<void>>();
  #client: Promise<PdfWorkerClient> | undefined;
  #restarts = 0;
  #ocrMissing: number[] = [];
  #ocrFailed: number[] = [];
  #usedPdfjsText = false;
  #usedPopplerText = false;

  constructor(
    input: ExtractPdfInput,
    info: PdfOpenResult,
    client: PdfWorkerClient | undefined,
    fast: Array<string | undefined> | undefined,
    readTailWithPoppler: boolean,
  ) {
    this.#input = input;
    this.#info = info;
    this.#fast = fast;
    this.#readTailWithPoppler = readTailWithPoppler;
    if (client) this.#client = Promise.resolve(client);
  }

  /**
   * The pdf.js worker, started on first use. A start that fails keeps failing (no retry storm)
   * as a page-level `PdfJsError`, so poppler's text stands and only pdf.js's extras are missing.
   */
  #worker(): Promise<PdfWorkerClient> {
    this.#client ??= PdfWorkerClient.open(workerOptions(this.#input)).then(
      (opened) => opened.client,
      (error: unknown) => {
        if (error instanceof GembatchError && error.code === 'GB_ERR_CANCELLED') throw error;
        this.#warnings.push('pdf.js could not open the PDF, so scanned pages and form fields were not examined');
        throw new PdfJsError({ name: 'OpenFailed', message: errorMessage(error) });
      },
    );
    return this.#client;
  }

  async read(): Promise<PartedDocument> {
    const ownsWorker = this.#client === undefined;
    try {
      for (let index = 0; index < this.#info.pages; index++) {
        throwIfAborted(this.#input.signal);
        const record: PageRecord = { index, text: '', source: 'text' };
        this.#records.push(record);
        const layer = await this.#withRecovery(() => this.#readTextLayer(index));
        if (!layer) {
          record.source = 'error';
          continue;
        }
        record.text = layer.text;
        if (layer.coverage !== null && layer.coverage >= SCANNED_MIN_IMAGE_COVERAGE)
          await this.#readScannedPage(record);
      }
      await Promise.all(this.#ocrInFlight);
      if (this.#readTailWithPoppler) await this.#readTail();
      const formFieldCount = await this.#appendFormFields();
      return this.#finish(formFieldCount);
    } finally {
      if (ownsWorker && this.#client) await (await this.#client.catch(() => undefined))?.close();
    }
  }

  async #readTextLayer(index: number): Promise<{ text: string; coverage: number | null }> {
    const fastText = this.#fast?.[index];
    if (fastText !== undefined) {
      this.#usedPopplerText = true;
      // Poppler's text stands even when pdf.js cannot measure the page (it then counts as text, not a scan).
      const measurable = countVisibleChars(fastText) < SCANNED_MAX_CHARS && index < this.#info.pages;
      const coverage = measurable
        ? await this.#withRecovery(async () =>
            (await this.#worker()).call({ op: 'pageCoverage', page: index }, PAGE_TIMEOUT_MS),
          )
        : undefined;
      return { text: fastText, coverage: coverage ?? null };
    }
    this.#usedPdfjsText = true;
    const result = await (await this.#worker()).call(
      { op: 'pageText', page: index, coverageBelowChars: SCANNED_MAX_CHARS },
      PAGE_TIMEOUT_MS,
    );
    return { text: result.text, coverage: result.imageCoverage };
  }

  /**
   * pdf.js stops walking the page tree at its first broken entry (that entry becomes its last,
   * unreadable page), so every later page is lost to it. Poppler skips the broken entry and
   * numbers the remaining pages on, one lower. Its pages from there to the end are appended in
   * order: their text is kept even though a page number may be off by the entries skipped.
   */
  async #readTail(): Promise<void> {
    const last = this.#records[this.#records.length - 1];
    const resumeAt = last?.source === 'error' ? this.#records.length - 1 : this.#records.length;
    const tail = await pdftotextFrom(this.#input.path, resumeAt, popplerOptions(this.#input.signal));
    if (!tail || tail.length === 0) return;
    this.#usedPopplerText = true;
    const room = Math.max(0, this.#input.maxPages - this.#records.length);
    for (const text of tail.slice(0, room)) this.#records.push({ index: this.#records.length, text, source: 'text' });
    this.#warnings.push(
      `pdf.js could reach only ${this.#info.pages} page(s) (a broken page tree); poppler recovered ${Math.min(room, tail.length)} more`,
    );
    if (tail.length > room)
      this.#warnings.push(`the PDF has more than ${this.#input.maxPages} pages; the rest were not read`);
  }

  /**
   * Runs one page's work; a pdf.js error on the page yields `undefined`, and so does a timeout or
   * crash (after restarting the worker). Cancellation and repeated crashes propagate.
   */
  async #withRecovery<T>(work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof PdfJsError) return undefined;
      if (
        error instanceof GembatchError &&
        ['GB_ERR_TIMEOUT', 'GB_ERR_PDF_INVALID', 'GB_ERR_PDF_TOO_LARGE'].includes(error.code)
      ) {
        throwIfAborted(this.#input.signal);
        if (this.#restarts >= MAX_WORKER_RESTARTS) throw error;
        this.#restarts++;
        this.#warnings.push(`the PDF parser was restarted after: ${error.message}`);
        await (await this.#worker()).restart();
        return undefined;
      }
      throw error;
    }
  }

  async #readScannedPage(record: PageRecord): Promise<void> {
    if (this.#input.scannedPages === 'vision') {
      const rendered = await this.#withRecovery(async () =>
        (await this.#worker()).call(
          {
            op: 'render',
            page: record.index,
            maxSide: this.#input.imageMaxSide,
            maxPixels: this.#input.maxImagePixels,
          },
          RENDER_TIMEOUT_MS,
        ),
      );
      if (!rendered) {
        record.source = 'error';
        return;
      }
      const image = await normalizeImage(
        Buffer.from(rendered.rgba.buffer, rendered.rgba.byteOffset, rendered.rgba.byteLength),
        {
          raw: { width: rendered.width, height: rendered.height, channels: 4 },
          maxSide: this.#input.imageMaxSide,
          maxPixels: this.#input.maxImagePixels,
          lossless: true,
        },
      );
      const sha256 = await this.#input.putBlob(image.bytes, image.mime);
      this.#media.push({
        kind: 'image',
        sha256,
        mime: image.mime,
        page: record.index,
        width: image.width,
        height: image.height,
      });
      record.source = 'image';
      return;
    }
    if (!tesseractAvailable()) {
      this.#ocrMissing.push(record.index);
      record.source = 'error';
      return;
    }
    const rendered = await this.#withRecovery(async () =>
      (await this.#worker()).call(
        {
          op: 'render',
          page: record.index,
          dpi: OCR_DPI,
          maxPixels: Math.min(this.#input.maxImagePixels, OCR_MAX_PIXELS),
        },
        RENDER_TIMEOUT_MS,
      ),
    );
    if (!rendered) {
      record.source = 'error';
      return;
    }
    const sharp = await loadSharp();
    const png = await sharp(Buffer.from(rendered.rgba.buffer, rendered.rgba.byteOffset, rendered.rgba.byteLength), {
      raw: { width: rendered.width, height: rendered.height, channels: 4 },
    })
      .greyscale()
      // Level 1: the PNG only travels to tesseract's stdin; speed matters more than size.
      .png({ compressionLevel: 1 })
      .toBuffer();
    const task = this.#ocr(record, png).finally(() => this.#ocrInFlight.delete(task));
    this.#ocrInFlight.add(task);
    if (this.#ocrInFlight.size >= OCR_CONCURRENCY) await Promise.race(this.#ocrInFlight);
  }

  async #ocr(record: PageRecord, png: Buffer): Promise<void> {
    try {
      const recognised = (
        await ocrImage(png, {
          timeoutMs: OCR_TIMEOUT_MS,
          ...(this.#input.signal ? { signal: this.#input.signal } : {}),
        })
      ).trim();
      // A thin text layer on a scan (a stamp, a page number) is kept ahead of the recognised text.
      record.text = [record.text, recognised].filter((part) => part.length > 0).join('\n');
      record.source = 'ocr';
    } catch (error) {
      if (error instanceof GembatchError && (error.code === 'GB_ERR_OCR_FAILED' || error.code === 'GB_ERR_TIMEOUT')) {
        this.#ocrFailed.push(record.index);
        record.source = 'error';
        return;
      }
      throw error;
    }
  }

  /** Appends filled AcroForm values to their pages (answers on filled forms exist only there). */
  async #appendFormFields(): Promise<number> {
    if (!this.#info.hasAcroForm) return 0;
    const fields: FormFieldValue[] | undefined = await this.#withRecovery(async () =>
      (await this.#worker()).call({ op: 'formFields' }, PAGE_TIMEOUT_MS),
    );
    if (!fields) {
      this.#warnings.push('the form fields could not be read');
      return 0;
    }
    const byPage = new Map<number, string[]>();
    for (const field of fields) {
      const lines = byPage.get(field.page) ?? [];
      lines.push(`${field.label}: ${field.value}`);
      byPage.set(field.page, lines);
    }
    for (const [page, lines] of byPage) {
      const record = this.#records[page];
      if (!record) continue;
      record.text = [record.text, `Form fields:\n${lines.join('\n')}`].filter((part) => part.length > 0).join('\n\n');
      if (record.source === 'error') record.source = 'text';
    }
    return fields.length;
  }

  #finish(formFieldCount: number): PartedDocument {
    const pagesWith = (source: PageSource) =>
      this.#records.filter((record) => record.source === source).map((record) => record.index);
    const failed = pagesWith('error');
    const unreadable = failed.filter((index) => !this.#ocrMissing.includes(index) && !this.#ocrFailed.includes(index));
    if (unreadable.length > 0) this.#warnings.push(describePages(unreadable, 'could not be read'));
    if (this.#ocrMissing.length > 0)
      this.#warnings.push(
        describePages(this.#ocrMissing, 'are scanned but OCR (tesseract) is not installed on this node'),
      );
    if (this.#ocrFailed.length > 0)
      this.#warnings.push(describePages(this.#ocrFailed, 'are scanned and OCR failed on them'));
    if (this.#info.hasXfa) this.#warnings.push('the PDF holds an XFA form; only its AcroForm fields were read');
    const engine =
      [this.#usedPdfjsText ? 'pdfjs' : '', this.#usedPopplerText ? 'pdftotext' : '']
        .filter((name) => name !== '')
        .join('+') || 'pdfjs';
    const parted = assemble(
      this.#records,
      this.#media,
      {
        pages: this.#records.length,
        producer: this.#info.producer ?? null,
        pdf_version: this.#info.pdfVersion ?? null,
        encrypted: this.#info.encrypted,
        form_fields: formFieldCount,
        text_engine: engine,
        pages_ocr: pagesWith('ocr'),
        pages_image: pagesWith('image'),
        pages_error: failed,
      },
      this.#warnings,
    );
    if (parted.document.kinds.length > 0) return parted;
    if (failed.length === this.#records.length && unreadable.length === failed.length)
      throw new GembatchError('GB_ERR_PDF_INVALID', 'no page of the PDF could be read');
    if (this.#ocrFailed.length > 0 && this.#ocrMissing.length === 0)
      throw new GembatchError('GB_ERR_OCR_FAILED', 'the PDF is scanned and OCR failed on every scanned page');
    const reason =
      this.#ocrMissing.length > 0
        ? 'its pages are scanned and this node has neither OCR nor a vision model'
        : 'it has no text layer and no scanned pages';
    throw new GembatchError('GB_ERR_NO_TEXT', `no text could be extracted from the PDF: ${reason}`);
  }
}
