import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { ensureTestModel, redisTest, tempDir, writeImageBombPdf, writeTextPdf } from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

const MIB = 1024 * 1024;

describe('extraction isolation on a worker node', () => {
  redisTest(
    'an image-bomb PDF fails alone with GB_ERR_EXTRACT_MEMORY while the worker process stays small, and the next file is extracted',
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '2',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
        GEMBATCH_EXTRACT_CONCURRENCY: '1',
        GEMBATCH_EXTRACT_MEMORY_BYTES: '512MiB',
      });
      const dir = await tempDir();
      const bomb = await writeImageBombPdf(join(dir.path, 'scan.pdf'), { images: 2 });
      const good = await writeTextPdf(join(dir.path, 'letter.pdf'), [
        'Dear tenant, the rent is due on the first of the month.',
      ]);
      const before = process.memoryUsage.rss();
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage.rss());
      }, 20);
      try {
        const bombView = await worker.settle(await worker.submitFile(bomb), 90_000);
        expect(bombView.status).toBe('failed');
        expect(bombView.error?.code).toBe('GB_ERR_EXTRACT_MEMORY');
      } finally {
        clearInterval(sampler);
      }
      // In-process, this 0.5 MB file took the worker to 2.7 GB resident.
      expect(peak - before).toBeLessThan(200 * MIB);
      const goodView = await worker.settle(await worker.submitFile(good), 90_000);
      expect(goodView.status).toBe('completed');
      await dir.cleanup();
    },
  );
});
