/**
 * The 2000-page measurement for @gembatch/extract: extracts a generated 2000-page text PDF with
 * `extractFile` (pdftotext fast path, and pdf.js alone for comparison) and with poppler's
 * `pdftotext` on its own, and prints the times, the ratio, and each run's peak RSS; a 500-page
 * file shows whether memory grows with page count. Each run is a fresh process, so peak RSS
 * belongs to that run alone. Numbers only: nothing here is asserted.
 *
 *   node_modules/.bin/tsx bench/extract-bench.ts [--runs 3] [--pdf path/to/file.pdf]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_EXTRACT_LIMITS, extractFile } from '@gembatch/extract';
// The media-samples entry, not the package root: the root also loads vitest fixtures, which only run inside vitest.
import { writePagedTextPdf } from '@gembatch/testing/media-samples';

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
  const result: Measurement = { ms, peakRssMb: process.resourceUsage().maxRSS / 1024, startRssMb, pages: doc.pages.length, engine: String(doc.meta.text_engine) };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out + err) : reject(new Error(`${command} exited with ${code}: ${err.slice(-500)}`))));
  });
}

async function measureExtract(engine: 'auto' | 'pdfjs', path: string): Promise<Measurement> {
  const out = await runChild(process.execPath, [...process.execArgv, self, '--measure', engine, path]);
  const line = out.split('\n').find((candidate) => candidate.startsWith('{'));
  if (!line) throw new Error(`no measurement in: ${out.slice(-500)}`);
  return JSON.parse(line) as Measurement;
}

async function measurePdftotext(path: string): Promise<Measurement> {
  const gnuTime = existsSync('/usr/bin/time');
  const started = performance.now();
  const out = gnuTime ? await runChild('/usr/bin/time', ['-f', 'maxrss_kb=%M', 'pdftotext', '-q', path, '/dev/null']) : await runChild('pdftotext', ['-q', path, '/dev/null']);
  const ms = performance.now() - started;
  const kb = /maxrss_kb=(\d+)/.exec(out)?.[1];
  return { ms, peakRssMb: kb === undefined ? null : Number(kb) / 1024 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function series(runs: number, measure: () => Promise<Measurement>): Promise<{ ms: number; peakRssMb: number | null; last: Measurement }> {
  const results: Measurement[] = [];
  for (let i = 0; i < runs; i++) results.push(await measure());
  const rss = results.map((r) => r.peakRssMb).filter((v): v is number => v !== null);
  return { ms: median(results.map((r) => r.ms)), peakRssMb: rss.length > 0 ? Math.max(...rss) : null, last: results[results.length - 1] as Measurement };
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(0)} MiB`);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--measure') {
    await measureOnce(args[1] === 'pdfjs' ? 'pdfjs' : 'auto', args[2] ?? '');
    return;
  }
  const runsIndex = args.indexOf('--runs');
  const runs = runsIndex >= 0 ? Number(args[runsIndex + 1]) : 3;
  const pdfIndex = args.indexOf('--pdf');
  const dir = await mkdtemp(join(tmpdir(), 'gembatch-extract-bench-'));
  try {
    const big = pdfIndex >= 0 ? (args[pdfIndex + 1] ?? '') : await writePagedTextPdf(join(dir, '2000-pages.pdf'), { pages: 2000 });
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
    console.log(`memory vs pages, peak RSS: auto ${mb(ours500.peakRssMb)} at 500 pages → ${mb(ours.peakRssMb)} at 2000; pdf.js ${mb(pdfjs500.peakRssMb)} → ${mb(pdfjs.peakRssMb)}`);
    console.log(`500-page times: auto ${fmt(ours500.ms)}, pdf.js ${fmt(pdfjs500.ms)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
