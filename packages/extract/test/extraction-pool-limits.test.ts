import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { tempDir, writeImageBombPdf, writeTextPdf, type TempDir } from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  DEFAULT_EXTRACT_LIMITS,
  ExtractionPool,
  type ExtractionPoolOptions,
  type ExtractOptions,
} from '../src/index.ts';
import { procfsAvailable } from '../src/pool/process-tree-memory.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

let dir: TempDir;
const file = (name: string) => `${dir.path}/${name}`;
const MIB = 1024 * 1024;

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
  dir = await tempDir('gembatch-extract-pool-limits-');
  await writeTextPdf(file('letter.pdf'), ['Dear Dr. Rivera,\nthe MRI of 4 May shows no fracture.', 'Second page.']);
  // 0.5 MB on disk; read in-process it drove the caller to 2.7 GB resident (measured before the pool).
  await writeImageBombPdf(file('image-bomb.pdf'), { images: 2 });
});

afterAll(async () => {
  await dir.cleanup();
});

describe('ExtractionPool under hostile input', () => {
  it.skipIf(!procfsAvailable())(
    'stops an image-bomb PDF at the memory limit (GB_ERR_EXTRACT_MEMORY, not retried) while the caller stays small, then goes on',
    async () => {
      const extraction = pool({ size: 1, memoryLimitBytes: 512 * MIB });
      const before = process.memoryUsage.rss();
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage.rss());
      }, 20);
      onTestFinished(() => clearInterval(sampler));
      const error = await expectErrorCode(extraction.extract(options(file('image-bomb.pdf'))), 'GB_ERR_EXTRACT_MEMORY');
      clearInterval(sampler);
      expect(error.retryable).toBe(false);
      expect(error.message).toContain('512 MiB');
      // In-process this file took the caller from ~200 MB to 2.7 GB; now the decode buffers live and die in the child.
      expect(peak - before).toBeLessThan(200 * MIB);
      expect(extraction.stats()).toMatchObject({ memoryKills: 1, processes: 0 });
      expect((await extraction.extract(options(file('letter.pdf')))).pages).toHaveLength(2);
    },
  );

  it.skipIf(!procfsAvailable())(
    'leaves no extraction process behind when the worker itself is killed with SIGKILL',
    async () => {
      // The image bomb keeps an unsupervised process busy for ~20 s (and growing to 2.7 GB): only a kill explains a prompt exit.
      const parent = spawn(
        process.execPath,
        ['--import', 'tsx', new URL('./pool-parent-process.ts', import.meta.url).pathname, file('image-bomb.pdf')],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      );
      onTestFinished(() => {
        if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
      });
      const lines = createInterface({ input: parent.stdout });
      const [line] = (await once(lines, 'line')) as [string];
      const { pid } = JSON.parse(line) as { pid: number };
      expect(processAlive(pid)).toBe(true);
      parent.kill('SIGKILL');
      // The child sees its IPC channel close and kills its own process group.
      await vi.waitFor(() => expect(processAlive(pid)).toBe(false), { timeout: 10_000, interval: 50 });
    },
  );
});
