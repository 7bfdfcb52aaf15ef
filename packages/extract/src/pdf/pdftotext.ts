import { StringDecoder } from 'node:string_decoder';
import { GembatchError } from '@gembatch/contracts';
import { runProcess } from '../util/run-process.ts';
import { findSystemTool } from '../util/system-tools.ts';
import { tidyPageText } from './page-text-layout.ts';
import type { PdfOpenResult } from './pdf-worker-protocol.ts';

/** Options of `pdftotextPages` and `pdfinfoPageCount`. */
export interface PopplerOptions {
  /** Kill the tool after this many milliseconds. */
  timeoutMs: number;
  /** Defaults to none. */
  signal?: AbortSignal;
}

/** Whether poppler's `pdftotext` and `pdfinfo` are installed (the fast path for large PDFs). */
export function popplerAvailable(): boolean {
  return findSystemTool('pdftotext') !== null && findSystemTool('pdfinfo') !== null;
}

/**
 * What poppler's pdfinfo reads from an unencrypted PDF (pages, producer, version, encryption,
 * forms), or `undefined` when it fails (the caller then relies on pdf.js, which also classifies
 * the failure). Never given a password: command lines are visible to every local user.
 */
export async function readPdfinfo(path: string, options: PopplerOptions): Promise<PdfOpenResult | undefined> {
  const pdfinfo = findSystemTool('pdfinfo');
  if (!pdfinfo) return undefined;
  const result = await runProcess(pdfinfo, ['-enc', 'UTF-8', path], {
    timeoutMs: options.timeoutMs,
    maxStdoutBytes: 1024 * 1024,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.exitCode !== 0) return undefined;
  const out = result.stdout.toString('utf8');
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(out)?.[1]?.trim();
  const pages = Number(field('Pages'));
  if (!Number.isInteger(pages) || pages < 0) return undefined;
  const form = field('Form') ?? 'none';
  return {
    pages,
    producer: field('Producer')?.slice(0, 200) || undefined,
    pdfVersion: field('PDF version') || undefined,
    encrypted: (field('Encrypted') ?? 'no').startsWith('yes'),
    hasAcroForm: form === 'AcroForm',
    hasXfa: form === 'XFA',
  };
}

/**
 * Extracts the text of pages `first..last` (0-based, inclusive) with poppler's pdftotext. Returns
 * one string per page; `'mismatch'` when it printed a different number of pages (a damaged page
 * in the range was skipped, so the others cannot be matched to their numbers); `'failed'` when
 * pdftotext could not read the range at all.
 */
export async function pdftotextPages(
  path: string,
  first: number,
  last: number,
  options: PopplerOptions,
): Promise<string[] | 'mismatch' | 'failed'> {
  const pdftotext = findSystemTool('pdftotext');
  if (!pdftotext) throw new GembatchError('GB_ERR_INTERNAL', 'pdftotext is not installed');
  const splitter = new PageSplitter();
  const result = await runProcess(
    pdftotext,
    ['-q', '-enc', 'UTF-8', '-f', String(first + 1), '-l', String(last + 1), path, '-'],
    {
      timeoutMs: options.timeoutMs,
      onStdout: (chunk) => splitter.write(chunk),
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
  if (result.exitCode !== 0 || result.overflowed) return 'failed';
  const trailing = splitter.end();
  if (splitter.pages.length !== last - first + 1 || trailing.trim() !== '') return 'mismatch';
  return splitter.pages;
}

/**
 * Splits pdftotext's output into tidied pages as it arrives: pdftotext ends every page, the last
 * included, with a form feed. Never holding a range's whole output (its bytes, their concatenation
 * and the decoded string: ~6 MiB per 500-page range, kept until a full collection) left ~50 MiB of
 * dead buffers in the extraction process by the end of a 20,000-page PDF.
 */
export class PageSplitter {
  readonly pages: string[] = [];
  readonly #decoder = new StringDecoder('utf8');
  #current: string[] = [];

  write(chunk: Buffer): void {
    const text = this.#decoder.write(chunk);
    let start = 0;
    for (let feed = text.indexOf('\f'); feed >= 0; feed = text.indexOf('\f', start)) {
      this.#current.push(text.slice(start, feed));
      this.pages.push(tidyPageText(this.#current.join('')));
      this.#current = [];
      start = feed + 1;
    }
    if (start < text.length) this.#current.push(text.slice(start));
  }

  /** What followed the last form feed (nothing but whitespace when every page was complete). */
  end(): string {
    this.#current.push(this.#decoder.end());
    return this.#current.join('');
  }
}

/**
 * Extracts every page poppler can read from page `first` (0-based, in poppler's own numbering) to
 * the end; `undefined` when pdftotext fails.
 */
export async function pdftotextFrom(
  path: string,
  first: number,
  options: PopplerOptions,
): Promise<string[] | undefined> {
  const pdftotext = findSystemTool('pdftotext');
  if (!pdftotext) return undefined;
  const result = await runProcess(pdftotext, ['-q', '-enc', 'UTF-8', '-f', String(first + 1), path, '-'], {
    timeoutMs: options.timeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.exitCode !== 0 || result.overflowed) return undefined;
  const pages = result.stdout.toString('utf8').split('\f');
  pages.pop();
  return pages.map(tidyPageText);
}
