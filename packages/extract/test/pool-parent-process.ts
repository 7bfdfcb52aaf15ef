/**
 * A stand-in worker for the extraction-pool tests: starts a pool, runs one long extraction of the
 * file named on the command line, and prints the busy extraction process's pid as one JSON line.
 * The test then kills this process with SIGKILL and checks that the extraction process goes too.
 */
import { DEFAULT_EXTRACT_LIMITS, ExtractionPool } from '../src/index.ts';

const path = process.argv[2];
if (!path) throw new Error('usage: pool-parent-process.ts <pdf>');
const pool = new ExtractionPool({ size: 1 });
void pool
  .extract({
    path,
    limits: DEFAULT_EXTRACT_LIMITS,
    scannedPages: 'ocr',
    visionAvailable: false,
    putBlob: () => Promise.resolve(''),
    pdfTextEngine: 'pdfjs',
  })
  .catch(() => undefined);
const timer = setInterval(() => {
  const [pid] = pool.busyProcessIds();
  if (pid === undefined) return;
  clearInterval(timer);
  process.stdout.write(`${JSON.stringify({ pid })}\n`);
}, 20);
