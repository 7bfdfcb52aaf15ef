/**
 * pdf-parse 2.4.5 against the extraction's own pdf.js calls, side by side in one run (issue 11: use
 * pdf-parse where its API serves, or keep it out with a measured reason). pdf-parse is not a
 * dependency of this repository; install it anywhere and pass its folder:
 *
 *   (mkdir -p /tmp/pdf-parse && cd /tmp/pdf-parse && npm init -y >/dev/null && npm i pdf-parse@2.4.5)
 *   node_modules/.bin/tsx bench/pdf-parse-bench.ts --pdf-parse /tmp/pdf-parse/node_modules/pdf-parse [--runs 3] [--pages 2000]
 *
 * Each timed run is a fresh process (wall time and peak RSS of that process):
 * - text of a generated N-page text PDF: `pdftotext`; `extractFile` with `pdfTextEngine: 'pdfjs'`
 *   (our pdf.js worker thread, per-page layout, per-page time limits); pdf-parse `getText()` over
 *   the whole file; pdf-parse `getText({partial: [i]})` page by page (what per-page recovery needs).
 * - scanned pages for a vision model: pdf-parse `getScreenshot()` (PNG bytes) against rendering the
 *   same pages to raw RGBA through the same pdf.js document (what `pdf-worker.ts` does).
 * - text agreement on the corpus PDFs (`../shared/corpus/pdfs`, when present): pages whose text
 *   differs between pdf-parse and `extractFile` (pdf.js engine), and table cells (tabs) each keeps.
 * Numbers only: nothing is asserted.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_EXTRACT_LIMITS, extractFile } from '@gembatch/extract';
// The media-samples entry, not the package root: the root also loads vitest fixtures, which only run inside vitest.
import { writePagedTextPdf, writeScannedPdf } from '@gembatch/testing/media-samples';
import { runCommand } from './run-command.ts';

/** The part of pdf-parse 2.4.5's `PDFParse` this bench calls. */
interface PdfParseInstance {
  doc?: PdfJsDocument;
  load(): Promise<PdfJsDocument>;
  getText(params?: {
    partial?: number[];
    pageJoiner?: string;
  }): Promise<{ total: number; pages: Array<{ num: number; text: string }> }>;
  getScreenshot(params?: {
    partial?: number[];
    desiredWidth?: number;
    imageDataUrl?: boolean;
    imageBuffer?: boolean;
  }): Promise<{ pages: Array<{ data: Uint8Array }> }>;
  destroy(): Promise<void>;
}
interface PdfJsPage {
  getViewport(options: { scale: number }): { width: number; height: number };
  render(options: { canvas: unknown; canvasContext: unknown; viewport: unknown }): { promise: Promise<void> };
  cleanup(): void;
}
interface PdfJsDocument {
  numPages: number;
  getPage(n: number): Promise<PdfJsPage>;
  canvasFactory: {
    create(
      w: number,
      h: number,
    ): {
      canvas: unknown;
      context: { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
    };
    destroy(target: unknown): void;
  };
}
type PdfParseClass = new (options: {
  data: Uint8Array;
  isEvalSupported?: boolean;
  verbosity?: number;
}) => PdfParseInstance;

const self = fileURLToPath(import.meta.url);
// Why 1536: the longest side the extraction renders a scanned page at for a vision model (pdf-worker.ts).
const RENDER_MAX_SIDE = 1536;

async function loadPdfParse(dir: string): Promise<PdfParseClass> {
  const module = (await import(pathToFileURL(join(dir, 'dist/pdf-parse/esm/index.js')).href)) as {
    PDFParse: PdfParseClass;
  };
  return module.PDFParse;
}

async function openWithPdfParse(dir: string, path: string): Promise<PdfParseInstance> {
  const PDFParse = await loadPdfParse(dir);
  return new PDFParse({ data: new Uint8Array(await readFile(path)), isEvalSupported: false });
}

/** Child mode: one measurement in this process, printed as a JSON line. */
async function child(mode: string, path: string, dir: string): Promise<unknown> {
  if (mode === 'ours') {
    const doc = await extractFile({
      path,
      limits: { ...DEFAULT_EXTRACT_LIMITS, maxPages: 100_000 },
      scannedPages: 'ocr',
      visionAvailable: false,
      pdfTextEngine: 'pdfjs',
      putBlob: () => Promise.reject(new Error('no media')),
    });
    return { pages: doc.pages.length, texts: splitPages(doc.text, doc.pages) };
  }
  const parser = await openWithPdfParse(dir, path);
  try {
    if (mode === 'pp-text') {
      const result = await parser.getText();
      return { pages: result.pages.length, texts: result.pages.map((page) => page.text) };
    }
    if (mode === 'pp-pages') {
      const total = (await parser.load()).numPages;
      const texts: string[] = [];
      for (let i = 1; i <= total; i++) texts.push((await parser.getText({ partial: [i] })).pages[0]?.text ?? '');
      return { pages: total, texts };
    }
    const doc = await parser.load();
    let bytes = 0;
    for (let i = 1; i <= doc.numPages; i++) {
      if (mode === 'pp-shot') {
        const unit = (await doc.getPage(i)).getViewport({ scale: 1 });
        const shot = await parser.getScreenshot({
          partial: [i],
          desiredWidth: Math.round((RENDER_MAX_SIDE * unit.width) / Math.max(unit.width, unit.height)),
          imageDataUrl: false,
          imageBuffer: true,
        });
        bytes += shot.pages[0]?.data.byteLength ?? 0;
      } else {
        bytes += await renderRgba(doc, i);
      }
    }
    return { pages: doc.numPages, bytes };
  } finally {
    await parser.destroy();
  }
}

/** What `pdf-worker.ts` does for a scanned page: render at 1536 px on the long side and copy out the RGBA pixels. */
async function renderRgba(doc: PdfJsDocument, n: number): Promise<number> {
  const page = await doc.getPage(n);
  try {
    const unit = page.getViewport({ scale: 1 });
    const viewport = page.getViewport({ scale: RENDER_MAX_SIDE / Math.max(unit.width, unit.height) });
    const width = Math.max(1, Math.floor(viewport.width));
    const height = Math.max(1, Math.floor(viewport.height));
    const target = doc.canvasFactory.create(width, height);
    try {
      await page.render({ canvas: target.canvas, canvasContext: target.context, viewport }).promise;
      return new Uint8Array(target.context.getImageData(0, 0, width, height).data).byteLength;
    } finally {
      doc.canvasFactory.destroy(target);
    }
  } finally {
    page.cleanup();
  }
}

/** Page texts back out of `extractFile`'s joined text (pages are joined by one blank line). */
function splitPages(text: string, pages: ReadonlyArray<{ chars: number }>): string[] {
  const texts: string[] = [];
  let offset = 0;
  for (const page of pages) {
    texts.push(text.slice(offset, offset + page.chars));
    offset += page.chars + 2;
  }
  return texts;
}

interface Measured {
  ms: number;
  peakRssMb: number;
  pages: number;
  texts?: string[];
  bytes?: number;
}

async function measure(mode: string, path: string, dir: string): Promise<Measured> {
  if (mode === 'pdftotext') {
    const started = performance.now();
    const out = await runCommand('/usr/bin/time', ['-f', 'maxrss_kb=%M', 'pdftotext', '-q', path, '/dev/null']);
    return {
      ms: performance.now() - started,
      peakRssMb: Number(/maxrss_kb=(\d+)/.exec(out)?.[1] ?? 0) / 1024,
      pages: 0,
    };
  }
  const out = await runCommand(process.execPath, [...process.execArgv, self, '--child', mode, path, dir]);
  const line = out.split('\n').find((candidate) => candidate.startsWith('{'));
  if (!line) throw new Error(`no measurement in: ${out.slice(-500)}`);
  return JSON.parse(line) as Measured;
}

/** `runs` rounds, each measuring every mode once in turn (so load on a shared machine hits all alike); median per mode. */
async function rounds(runs: number, modes: readonly string[], path: string, dir: string): Promise<Measured[]> {
  const results = modes.map((): Measured[] => []);
  for (let round = 0; round < runs; round++)
    for (const [i, mode] of modes.entries()) results[i]?.push(await measure(mode, path, dir));
  return results.map((list) => {
    const median = [...list].sort((a, b) => a.ms - b.ms)[Math.floor(list.length / 2)] as Measured;
    return { ...median, peakRssMb: Math.max(...list.map((r) => r.peakRssMb)) };
  });
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();
const tabs = (text: string) => (text.match(/\t/g) ?? []).length;

function corpusPdfs(): string[] {
  const root = join(fileURLToPath(new URL('..', import.meta.url)), '../shared/corpus/pdfs');
  if (!existsSync(root)) return [];
  const found: string[] = [];
  for (const sub of ['medical', 'legal', 'edge']) {
    const folder = join(root, sub);
    if (!existsSync(folder)) continue;
    // Text-layer files only: broken ones fail in both, a scan is OCRed and a form gets its field values only in ours.
    for (const name of readdirSync(folder))
      if (name.endsWith('.pdf') && !/encrypted|zero-bytes|header-then-eof|truncated|SCANNED|acroform/.test(name))
        found.push(join(folder, name));
  }
  return found;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const started = performance.now();
    const result = (await child(args[1] ?? '', args[2] ?? '', args[3] ?? '')) as Omit<Measured, 'ms' | 'peakRssMb'>;
    process.stdout.write(
      `${JSON.stringify({ ...result, ms: performance.now() - started, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
    );
    return;
  }
  const flag = (name: string, fallback: string) => {
    const index = args.indexOf(name);
    return index >= 0 ? (args[index + 1] ?? fallback) : fallback;
  };
  const dir = flag('--pdf-parse', '');
  if (!existsSync(join(dir, 'package.json')))
    throw new Error('pass --pdf-parse <folder of an installed pdf-parse 2.4.5>');
  const runs = Number(flag('--runs', '3'));
  const pages = Number(flag('--pages', '2000'));
  const scanPages = Number(flag('--scan-pages', '8'));
  const version = (JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  const work = await mkdtemp(join(tmpdir(), 'gembatch-pdf-parse-bench-'));
  const load = () =>
    loadavg()
      .map((value) => value.toFixed(1))
      .join(' / ');
  try {
    console.log(
      `pdf-parse ${version} vs the extraction's pdf.js calls; ${runs} run(s) each, median wall, each in a fresh process; load average ${load()}`,
    );
    const big = await writePagedTextPdf(join(work, `${pages}-pages.pdf`), { pages });
    const labels = [
      'pdftotext (poppler)',
      "extractFile, pdfTextEngine 'pdfjs'",
      'pdf-parse getText()',
      'pdf-parse getText({partial:[i]}) ×N',
    ];
    const measured = await rounds(runs, ['pdftotext', 'ours', 'pp-text', 'pp-pages'], big, dir);
    const rows = labels.map((label, i): [string, Measured] => [label, measured[i] as Measured]);
    const base = rows[0]?.[1].ms ?? Number.NaN;
    console.log(`text, ${pages}-page generated PDF:`);
    for (const [label, m] of rows)
      console.log(
        `  ${label.padEnd(38)} ${(m.ms / 1000).toFixed(2).padStart(7)} s  ${(m.ms / base).toFixed(2).padStart(5)}× pdftotext  peak RSS ${m.peakRssMb.toFixed(0).padStart(4)} MiB`,
      );
    const ours = rows[1]?.[1].texts ?? [];
    const theirs = rows[2]?.[1].texts ?? [];
    console.log(
      `  pages whose text differs (whitespace folded): ${ours.filter((text, i) => squash(text) !== squash(theirs[i] ?? '')).length} of ${ours.length}`,
    );

    const scan = await writeScannedPdf(join(work, 'scan.pdf'), {
      pages: Array.from({ length: scanPages }, () => 'scan' as const),
    });
    const [rgba, shot] = (await rounds(runs, ['rgba', 'pp-shot'], scan, dir)) as [Measured, Measured];
    console.log(`scanned pages rendered at ${RENDER_MAX_SIDE} px, ${scanPages} pages:`);
    console.log(
      `  pdf.js render → raw RGBA (pdf-worker.ts)     ${(rgba.ms / 1000).toFixed(2).padStart(7)} s  ${((rgba.bytes ?? 0) / 1024 / 1024).toFixed(1)} MiB of pixels  peak RSS ${rgba.peakRssMb.toFixed(0)} MiB`,
    );
    console.log(
      `  pdf-parse getScreenshot() → PNG             ${(shot.ms / 1000).toFixed(2).padStart(7)} s  ${((shot.bytes ?? 0) / 1024 / 1024).toFixed(1)} MiB of PNG     peak RSS ${shot.peakRssMb.toFixed(0)} MiB`,
    );

    const corpus = corpusPdfs();
    if (corpus.length > 0)
      console.log(
        'corpus text agreement (extractFile pdf.js engine vs pdf-parse getText, per page, whitespace folded):',
      );
    for (const file of corpus) {
      const a = await measure('ours', file, dir);
      const b = await measure('pp-text', file, dir);
      const at = a.texts ?? [];
      const bt = b.texts ?? [];
      const differ = at.filter((text, i) => squash(text) !== squash(bt[i] ?? '')).length;
      const chars = (texts: string[]) => texts.reduce((sum, text) => sum + squash(text).length, 0);
      console.log(
        `  ${relative(join(fileURLToPath(new URL('..', import.meta.url)), '../shared/corpus/pdfs'), file).padEnd(52)} pages ${String(at.length).padStart(3)} / ${String(bt.length).padStart(3)}  differ ${String(differ).padStart(3)}  chars ${chars(at)} / ${chars(bt)}  tabs ${at.reduce((s, t) => s + tabs(t), 0)} / ${bt.reduce((s, t) => s + tabs(t), 0)}`,
      );
    }
    console.log(`load average at end: ${load()}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
