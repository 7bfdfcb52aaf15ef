import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { ExtractedDocument } from '@gembatch/contracts';
import {
  tempDir,
  writeLargeTextPdf,
  writePagedTextPdf,
  systemToolAvailable,
  writeSampleImage,
  writeTextPdf,
  type TempDir,
} from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  DEFAULT_EXTRACT_LIMITS,
  ExtractionPool,
  extractFile,
  type ExtractionPoolOptions,
  type ExtractOptions,
} from '../src/index.ts';
import { procfsAvailable } from '../src/pool/process-tree-memory.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

let dir: TempDir;
const file = (name: string) => `${dir.path}/${name}`;

function options(path: string, overrides: Partial<ExtractOptions> = {}): ExtractOptions {
  return {
    path,
    limits: DEFAULT_EXTRACT_LIMITS,
    scannedPages: 'ocr',
    visionAvailable: false,
    putBlob: new MemoryBlobSink().put,
    ...overrides,
  };
}

function pool(poolOptions: ExtractionPoolOptions): ExtractionPool {
  const created = new ExtractionPool(poolOptions);
  onTestFinished(() => created.close());
  return created;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-pool-');
  await writeTextPdf(file('letter.pdf'), ['Dear Dr. Rivera,\nthe MRI of 4 May shows no fracture.', 'Second page.']);
  // pdf.js alone on 60 pages keeps a process busy long enough to be killed mid-job.
  await writePagedTextPdf(file('sixty.pdf'), { pages: 60, linesPerPage: 30 });
  // Long enough that neither job of the crash test can finish before both are seen busy, on any machine.
  await writeLargeTextPdf(file('long.pdf'), { pages: 1900 });
  await writeLargeTextPdf(file('beside.pdf'), { pages: 600 });
});

afterAll(async () => {
  await dir.cleanup();
});

describe('ExtractionPool', () => {
  it.skipIf(!systemToolAvailable('pdftotext'))(
    'hands over a text of several IPC runs (1,900 pages, 7 MiB) exactly as extractFile returns it',
    async () => {
      const extraction = pool({ size: 1 });
      const [pooled, direct] = await Promise.all([
        extraction.extract(options(file('long.pdf'))),
        extractFile(options(file('long.pdf'))),
      ]);
      expect(pooled.meta.text_engine).toBe('pdftotext');
      expect(pooled.text.length).toBeGreaterThan(4 * 1024 * 1024);
      expect(pooled.text === direct.text).toBe(true);
      expect(pooled).toEqual(direct);
    },
  );

  it.skipIf(!procfsAvailable())(
    "extracts in a child process started with a minimal environment, with the same result as extractFile, and media going through the caller's putBlob",
    async () => {
      // A secret in the parent's environment must never reach the process that parses hostile files.
      const secrets = {
        REDIS_URL: 'redis://:pool-secret@redis:6379',
        HF_TOKEN: 'hf_pool_secret',
        GEMBATCH_API_KEYS: 'tenant:pool-secret-key',
      };
      const saved = Object.fromEntries(Object.keys(secrets).map((name) => [name, process.env[name]]));
      Object.assign(process.env, secrets);
      onTestFinished(() => {
        for (const [name, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      });
      const extraction = pool({ size: 1 });
      const doc = await extraction.extract(options(file('letter.pdf')));
      expect(ExtractedDocument.parse(doc)).toEqual(doc);
      expect(doc.text).toContain('the MRI of 4 May shows no fracture.');
      const [pid] = extraction.processIds();
      expect(pid).not.toBe(process.pid);
      expect(extraction.stats()).toMatchObject({ processes: 1, busy: 0, queued: 0, started: 1 });

      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      expect(environ).toContain('PATH=');
      expect(environ).not.toContain('pool-secret');
      expect(environ).not.toContain('hf_pool_secret');
      expect(environ).not.toMatch(/(^|\0)(REDIS_URL|HF_TOKEN|GEMBATCH_API_KEYS)=/);

      const path = await writeSampleImage(file('photo.png'), 'png', { width: 64, height: 48 });
      const sink = new MemoryBlobSink();
      const image = await extraction.extract(
        options(path, { putBlob: sink.put, scannedPages: 'vision', visionAvailable: true }),
      );
      expect(image.media).toHaveLength(1);
      expect(sink.get(image.media[0]!.sha256).length).toBeGreaterThan(0);
      // The same process took both jobs.
      expect(extraction.processIds()).toEqual([pid]);
    },
  );

  it('returns a text larger than one IPC slice whole and in order', async () => {
    const extraction = pool({ size: 1 });
    // ~9.5 Mi characters: three 4 Mi slices, each line numbered so a lost or reordered slice shows.
    const lines = Array.from({ length: 300_000 }, (_, i) => `line ${String(i).padStart(6, '0')} of the long record`);
    await writeFile(file('long.txt'), `${lines.join('\n')}\n`);
    const [inPool, inProcess] = await Promise.all([
      extraction.extract(options(file('long.txt'))),
      extractFile(options(file('long.txt'))),
    ]);
    expect(inPool.text.length).toBeGreaterThan(8 * 1024 * 1024);
    expect(inPool.text === inProcess.text).toBe(true);
    expect(inPool).toEqual({ ...inProcess, text: inPool.text });
  });

  it('fails a job past its deadline with GB_ERR_EXTRACT_TIMEOUT (not retried) and replaces the process', async () => {
    const extraction = pool({ size: 1, timeoutMs: 50 });
    const error = await expectErrorCode(
      extraction.extract(options(file('sixty.pdf'), { pdfTextEngine: 'pdfjs' })),
      'GB_ERR_EXTRACT_TIMEOUT',
    );
    expect(error.retryable).toBe(false);
    expect(extraction.stats()).toMatchObject({ timeouts: 1, processes: 0, started: 1 });
  });

  it('survives a crashing extraction: only that job fails (GB_ERR_EXTRACT_CRASHED), the job beside it completes, a new process takes the next', async () => {
    const extraction = pool({ size: 2 });
    const crashing = extraction.extract(options(file('long.pdf'), { pdfTextEngine: 'pdfjs' }));
    await vi.waitFor(() => expect(extraction.busyProcessIds()).toHaveLength(1), { timeout: 60_000, interval: 20 });
    const [victim] = extraction.busyProcessIds();
    const beside = extraction.extract(options(file('beside.pdf'), { pdfTextEngine: 'pdfjs' }));
    await vi.waitFor(() => expect(extraction.busyProcessIds()).toHaveLength(2), { timeout: 60_000, interval: 20 });
    // What a segfault in a native decoder (libvips, pdf.js's wasm, a codec) looks like from outside.
    process.kill(victim!, 'SIGSEGV');
    const error = await expectErrorCode(crashing, 'GB_ERR_EXTRACT_CRASHED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('SIGSEGV');
    expect((await beside).pages).toHaveLength(600);
    // Two at once: the surviving process takes one, a new process replaces the crashed one for the other.
    const next = await Promise.all([
      extraction.extract(options(file('letter.pdf'))),
      extraction.extract(options(file('letter.pdf'))),
    ]);
    expect(next.map((doc) => doc.pages.length)).toEqual([2, 2]);
    expect(extraction.processIds()).not.toContain(victim);
    // The replacement may still be starting: the survivor can finish the first letter and take the
    // second before it is up, on a fast machine.
    await vi.waitFor(() => expect(extraction.stats()).toMatchObject({ crashes: 1, started: 3, processes: 2 }), {
      timeout: 30_000,
      interval: 20,
    });
  });

  it('cancels a running job: the process is killed and the job fails with GB_ERR_CANCELLED', async () => {
    const extraction = pool({ size: 1 });
    const controller = new AbortController();
    const job = extraction.extract(options(file('sixty.pdf'), { pdfTextEngine: 'pdfjs', signal: controller.signal }));
    await vi.waitFor(() => expect(extraction.busyProcessIds()).toHaveLength(1), { timeout: 60_000, interval: 20 });
    const [pid] = extraction.busyProcessIds();
    controller.abort();
    await expectErrorCode(job, 'GB_ERR_CANCELLED');
    expect(processAlive(pid!)).toBe(false);
    expect(extraction.stats()).toMatchObject({ cancelled: 1, processes: 0 });
  });

  it('fails queued jobs with a retryable GB_ERR_SERVICE_UNAVAILABLE on close, and refuses new ones', async () => {
    const extraction = new ExtractionPool({ size: 1 });
    // Outcomes are taken at once: both promises reject inside close(), before the assertions run.
    const running = extraction
      .extract(options(file('sixty.pdf'), { pdfTextEngine: 'pdfjs' }))
      .catch((error: unknown) => error);
    const queued = extraction.extract(options(file('letter.pdf'))).catch((error: unknown) => error);
    await vi.waitFor(() => expect(extraction.busyProcessIds()).toHaveLength(1), { timeout: 60_000, interval: 20 });
    await extraction.close();
    await extraction.close();
    expect((await queued) as object).toMatchObject({ code: 'GB_ERR_SERVICE_UNAVAILABLE', retryable: true });
    // A job running at close is handed back too, not failed for good.
    expect((await running) as object).toMatchObject({ code: 'GB_ERR_SERVICE_UNAVAILABLE', retryable: true });
    await expectErrorCode(extraction.extract(options(file('letter.pdf'))), 'GB_ERR_SERVICE_UNAVAILABLE');
    expect(extraction.processIds()).toEqual([]);
  });
});
