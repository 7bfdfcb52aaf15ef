/**
 * The extraction benchmark for @gembatch/extract. Three sections (`--sections`, default all):
 *
 * - `2000`: a generated 2000-page text PDF with `extractFile` (pdftotext fast path, and pdf.js
 *   alone) and with poppler's `pdftotext` on its own: times, the ratio, each run's peak RSS; a
 *   500-page file shows whether memory grows with page count. Each run is a fresh process.
 * - `scan`: scanned pages per second through an `ExtractionPool` of 1, 2 and 4 processes (the
 *   worker's path: OCR with tesseract), all documents submitted at once, processes started first.
 * - `20k`: one 20,000-page text PDF through a one-process pool: wall time, CPU time of the
 *   extraction process and the tools it ran, peak RSS of that process tree and of the caller.
 *
 * The machine's load average is printed before and after: on a shared machine it is the noise.
 * Numbers only: nothing here is asserted.
 *
 *   node_modules/.bin/tsx bench/extract-bench.ts [--sections 2000,scan,20k] [--runs 3] [--pdf file.pdf]
 *     [--scan-docs 8] [--scan-pages 2] [--processes 1,2,4] [--pages 20000]
 */
import { existsSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_EXTRACT_LIMITS, ExtractionPool, extractFile, type ExtractOptions } from '@gembatch/extract';
// The media-samples entry, not the package root: the root also loads vitest fixtures, which only run inside vitest.
import { systemToolAvailable, writePagedTextPdf, writeScannedPdf } from '@gembatch/testing/media-samples';
import { writeLargeTextPdf } from '@gembatch/testing/raw-pdf';
import { runCommand } from './run-command.ts';
import { median } from './median.ts';

interface Measurement {
  ms: number;
  /** Peak resident set size of the measuring process in MiB (for pdftotext: of pdftotext itself, when GNU time is installed). */
  peakRssMb: number | null;
  /** Resident set size just before extracting (Node, tsx and the modules loaded), in MiB. */
  startRssMb?: number;
  pages?: number;
  engine?: string;
}

const self = fileURLToPath(import.meta.url);

/** Child mode: one extraction in this process, reported as a JSON line on stdout. */
async function measureOnce(engine: 'auto' | 'pdfjs', path: string): Promise<void> {
  const startRssMb = process.memoryUsage().rss / 1024 / 1024;
  const started = performance.now();
  const doc = await extractFile({
    path,
    limits: { ...DEFAULT_EXTRACT_LIMITS, maxPages: 100_000 },
    scannedPages: 'ocr',
    visionAvailable: false,
    pdfTextEngine: engine,
    putBlob: async () => {
      throw new Error('a text PDF stores no media');
    },
  });
  const ms = performance.now() - started;
  const result: Measurement = {
    ms,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    startRssMb,
    pages: doc.pages.length,
    engine: String(doc.meta.text_engine),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function measureExtract(engine: 'auto' | 'pdfjs', path: string): Promise<Measurement> {
  const out = await runCommand(process.execPath, [...process.execArgv, self, '--measure', engine, path]);
  const line = out.split('\n').find((candidate) => candidate.startsWith('{'));
  if (!line) throw new Error(`no measurement in: ${out.slice(-500)}`);
  return JSON.parse(line) as Measurement;
}

async function measurePdftotext(path: string): Promise<Measurement> {
  const gnuTime = existsSync('/usr/bin/time');
  const started = performance.now();
  const out = gnuTime
    ? await runCommand('/usr/bin/time', ['-f', 'maxrss_kb=%M', 'pdftotext', '-q', path, '/dev/null'])
    : await runCommand('pdftotext', ['-q', path, '/dev/null']);
  const ms = performance.now() - started;
  const kb = /maxrss_kb=(\d+)/.exec(out)?.[1];
  return { ms, peakRssMb: kb === undefined ? null : Number(kb) / 1024 };
}

async function series(
  runs: number,
  measure: () => Promise<Measurement>,
): Promise<{ ms: number; peakRssMb: number | null; last: Measurement }> {
  const results: Measurement[] = [];
  for (let i = 0; i < runs; i++) results.push(await measure());
  const rss = results.map((r) => r.peakRssMb).filter((v): v is number => v !== null);
  return {
    ms: median(results.map((r) => r.ms)),
    peakRssMb: rss.length > 0 ? Math.max(...rss) : null,
    last: results[results.length - 1] as Measurement,
  };
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(0)} MiB`);

const MIB = 1024 * 1024;

/** Lines of a dense scanned page (each fits the 1275-px page image at the sample's font size). */
const SCAN_LINES = Array.from({ length: 20 }, (_, i) => `${i + 1}. The tenant pays rent on day one.`);

function textOptions(path: string, maxPages: number): ExtractOptions {
  return {
    path,
    limits: { ...DEFAULT_EXTRACT_LIMITS, maxPages },
    scannedPages: 'ocr',
    visionAvailable: false,
    putBlob: () => Promise.reject(new Error('a text PDF stores no media')),
  };
}

/** CPU seconds of a live process plus the children it has waited for (pdftotext, tesseract), from /proc. */
function processTreeCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command name (which may hold spaces): utime, stime, cutime, cstime are 14–17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Why 100: the kernel's USER_HZ, the unit of these fields on every Linux architecture.
    return [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index]), 0) / 100;
  } catch {
    return null;
  }
}

/** Samples the pool's process trees and this process every 50 ms; returns the peaks. */
function sampleMemory(pool: ExtractionPool): () => { poolPeakMb: number; callerPeakMb: number } {
  let poolPeak = 0;
  let callerPeak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    poolPeak = Math.max(poolPeak, pool.rssBytes());
    callerPeak = Math.max(callerPeak, process.memoryUsage.rss());
  }, 50);
  return () => {
    clearInterval(timer);
    return { poolPeakMb: poolPeak / MIB, callerPeakMb: callerPeak / MIB };
  };
}

const load = () =>
  loadavg()
    .map((value) => value.toFixed(1))
    .join(' / ');

async function scanSection(dir: string, docs: number, pagesPerDoc: number, processCounts: number[]): Promise<void> {
  if (!systemToolAvailable('tesseract')) {
    console.log('scan: skipped, tesseract is not installed');
    return;
  }
  const first = await writeScannedPdf(join(dir, 'scan-0.pdf'), {
    pages: Array.from({ length: pagesPerDoc }, () => 'scan' as const),
    scanLines: SCAN_LINES,
  });
  // Separate files, as separate uploads would be (the same bytes: OCR cost is what is measured).
  const files = [first];
  for (let i = 1; i < docs; i++)
    files.push(await copyFile(first, join(dir, `scan-${i}.pdf`)).then(() => join(dir, `scan-${i}.pdf`)));
  const warmup = await writePagedTextPdf(join(dir, 'warmup.pdf'), { pages: 1 });
  console.log(
    `scanned pages through the pool: ${docs} documents × ${pagesPerDoc} scanned pages, OCR, all submitted at once (load average ${load()})`,
  );
  for (const size of processCounts) {
    const pool = new ExtractionPool({ size });
    try {
      // Start every process first: the figure is OCR throughput, not process start-up.
      await Promise.all(Array.from({ length: size }, () => pool.extract(textOptions(warmup, 10))));
      const stop = sampleMemory(pool);
      const started = performance.now();
      const results = await Promise.all(files.map((path) => pool.extract(textOptions(path, 10))));
      const seconds = (performance.now() - started) / 1000;
      const { poolPeakMb } = stop();
      const ocrPages = results.reduce((sum, doc) => sum + (doc.meta.pages_ocr as number[]).length, 0);
      console.log(
        `  ${String(size).padStart(2)} process(es): ${(ocrPages / seconds).toFixed(2).padStart(6)} scanned pages/s   ${ocrPages} pages in ${seconds.toFixed(1)} s   peak RSS of the pool ${poolPeakMb.toFixed(0)} MiB`,
      );
    } finally {
      await pool.close();
    }
  }
}

async function largeSection(dir: string, pages: number): Promise<void> {
  const generated = performance.now();
  const path = await writeLargeTextPdf(join(dir, `${pages}-pages.pdf`), { pages });
  console.log(
    `${pages}-page text PDF (written in ${((performance.now() - generated) / 1000).toFixed(1)} s) through a one-process pool (load average ${load()})`,
  );
  const pool = new ExtractionPool({ size: 1 });
  try {
    await pool.extract(textOptions(await writePagedTextPdf(join(dir, 'warmup.pdf'), { pages: 1 }), 10));
    const [pid] = pool.processIds();
    const cpuBefore = pid === undefined ? null : processTreeCpuSeconds(pid);
    const callerBefore = process.memoryUsage.rss() / MIB;
    const stop = sampleMemory(pool);
    const started = performance.now();
    const doc = await pool.extract(textOptions(path, pages));
    const seconds = (performance.now() - started) / 1000;
    const { poolPeakMb, callerPeakMb } = stop();
    const cpuAfter = pid === undefined ? null : processTreeCpuSeconds(pid);
    const cpu = cpuBefore === null || cpuAfter === null ? 'n/a' : `${(cpuAfter - cpuBefore).toFixed(1)} s`;
    console.log(
      `  ${doc.pages.length} pages (${String(doc.meta.text_engine)}), ${(doc.text.length / MIB).toFixed(0)} MiB of text: wall ${seconds.toFixed(1)} s, CPU of the extraction process and its tools ${cpu}`,
    );
    console.log(
      `  peak RSS: extraction process tree ${poolPeakMb.toFixed(0)} MiB; caller ${callerPeakMb.toFixed(0)} MiB (${callerBefore.toFixed(0)} MiB before, holding the result after)`,
    );
  } finally {
    await pool.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--measure') {
    await measureOnce(args[1] === 'pdfjs' ? 'pdfjs' : 'auto', args[2] ?? '');
    return;
  }
  const flag = (name: string, fallback: string) => {
    const index = args.indexOf(name);
    return index >= 0 ? (args[index + 1] ?? fallback) : fallback;
  };
  const runs = Number(flag('--runs', '3'));
  const sections = new Set(flag('--sections', '2000,scan,20k').split(','));
  const pdfIndex = args.indexOf('--pdf');
  const dir = await mkdtemp(join(tmpdir(), 'gembatch-extract-bench-'));
  try {
    console.log(`load average (1/5/15 min) at start: ${load()} on ${availableParallelism()} cores`);
    if (sections.has('scan'))
      await scanSection(
        dir,
        Number(flag('--scan-docs', '8')),
        Number(flag('--scan-pages', '2')),
        flag('--processes', '1,2,4').split(',').map(Number),
      );
    if (sections.has('20k')) await largeSection(dir, Number(flag('--pages', '20000')));
    if (!sections.has('2000')) return;
    const big =
      pdfIndex >= 0
        ? (args[pdfIndex + 1] ?? '')
        : await writePagedTextPdf(join(dir, '2000-pages.pdf'), { pages: 2000 });
    const small = await writePagedTextPdf(join(dir, '500-pages.pdf'), { pages: 500 });
    console.log(`extract bench: ${runs} run(s) each, median wall time; each run in a fresh process`);
    const pdftotext = await series(runs, () => measurePdftotext(big));
    const ours = await series(runs, () => measureExtract('auto', big));
    const pdfjs = await series(1, () => measureExtract('pdfjs', big));
    const ours500 = await series(runs, () => measureExtract('auto', small));
    const pdfjs500 = await series(1, () => measureExtract('pdfjs', small));
    const row = (label: string, value: { ms: number; peakRssMb: number | null; last: Measurement }, ratio: boolean) =>
      `${label.padEnd(34)} ${fmt(value.ms).padStart(8)}   peak RSS ${mb(value.peakRssMb).padStart(8)}` +
      (value.last.startRssMb === undefined ? '' : ` (at start ${mb(value.last.startRssMb)})`) +
      (ratio ? `   ${(value.ms / pdftotext.ms).toFixed(2)}× pdftotext` : '');
    console.log(`file: ${big} (${ours.last.pages} pages)`);
    console.log(row('pdftotext (poppler, one process)', pdftotext, false));
    console.log(row(`extractFile, auto (${ours.last.engine ?? '?'})`, ours, true));
    console.log(row('extractFile, pdf.js only (1 run)', pdfjs, true));
    console.log(
      `memory vs pages, peak RSS: auto ${mb(ours500.peakRssMb)} at 500 pages → ${mb(ours.peakRssMb)} at 2000; pdf.js ${mb(pdfjs500.peakRssMb)} → ${mb(pdfjs.peakRssMb)}`,
    );
    console.log(`500-page times: auto ${fmt(ours500.ms)}, pdf.js ${fmt(pdfjs500.ms)}`);
  } finally {
    console.log(`load average at end: ${load()}`);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
