import { join } from 'node:path';
import { describe, expect } from 'vitest';
import {
  ensureTestModel,
  redisTest,
  tempDir,
  writeEncryptedPdf,
  writeTextPdf,
  writeTruncatedPdf,
} from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

/**
 * A PDF password is a secret: it must leave the stored job on every path, not only when it opened
 * the file (issue 9: it stayed in Redis for the retention period whenever extraction failed).
 */
/** Why not a short word: the stored job holds random hex ids and hashes, and 'abc' turned up in one of them. */
const PASSWORD = 'Pw-secret!Zq';

describe('the PDF password leaves the stored job', () => {
  redisTest(
    'when it opens the file, when it is wrong, and when extraction fails for another reason',
    async ({ redis }) => {
      const dir = await tempDir();
      try {
        const text = await writeTextPdf(join(dir.path, 'opinion.pdf'), ['The court affirmed the judgment.']);
        const locked = await writeEncryptedPdf(text, join(dir.path, 'locked.pdf'), {
          userPassword: PASSWORD,
          ownerPassword: 'owner',
        });
        const broken = await writeTruncatedPdf(join(dir.path, 'broken.pdf'), 0.4);
        const worker = await startWorker(redis, {
          GEMBATCH_MODEL: await ensureTestModel('tiny'),
          GEMBATCH_SEQUENCES: '1',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
        });
        const cases = [
          { path: locked, password: PASSWORD, status: 'completed' },
          { path: locked, password: 'wrong-password', status: 'failed', code: 'GB_ERR_PDF_PASSWORD_INVALID' },
          { path: broken, password: PASSWORD, status: 'failed', code: 'GB_ERR_PDF_INVALID' },
        ];
        for (const c of cases) {
          const id = await worker.submitFile(c.path, 'summarize', { max_tokens: 8, password: c.password });
          const view = await worker.settle(id);
          expect(view.status).toBe(c.status);
          if (c.code) expect(view.error?.code).toBe(c.code);
          const stored = await worker.producer.queues.extract.getJob(id);
          expect(stored?.data).toBeDefined();
          expect(stored?.data).not.toHaveProperty('password');
          expect(JSON.stringify(stored?.data)).not.toContain(c.password);
        }
      } finally {
        await dir.cleanup();
      }
    },
  );
});
