import { describe, expect } from 'vitest';
import { getJobResultSha256 } from '@gembatch/queue';
import { getJson } from '@gembatch/storage';
import { ensureTestModel, redisTest } from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

describe('chunks per job (issue 9)', () => {
  redisTest(
    'an input that would fan out beyond GEMBATCH_MAX_CHUNKS_PER_JOB fails with GB_ERR_INPUT_TOO_LARGE before any chunk job exists',
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '1',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '512',
        GEMBATCH_CHUNK_OVERLAP_TOKENS: '0',
        GEMBATCH_MAX_CHUNKS_PER_JOB: '5',
      });
      // ~6,000 words on a 512-token context: dozens of chunks.
      const jobId = await worker.submitText(
        'The tenant paid the rent late again this month. '.repeat(600),
        'summarize',
      );
      const view = await worker.settle(jobId, 60_000);
      expect(view.status).toBe('failed');
      expect(view.error?.code).toBe('GB_ERR_INPUT_TOO_LARGE');
      expect(view.error?.message).toMatch(
        /^the input needs \d+ chunks of the 512-token context; the limit is 5 chunks per job \(GEMBATCH_MAX_CHUNKS_PER_JOB\)$/,
      );
      // Non-retryable: one attempt; and no child was ever queued.
      expect(await worker.producer.queues.generate.count()).toBe(0);
      expect(
        (await worker.producer.queues.generate.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed'])).filter(
          (job) => job.id?.includes('-chunk-'),
        ).length,
      ).toBe(0);
    },
    90_000,
  );
});

describe('blank chunks (issue 9)', () => {
  redisTest(
    "'a' + 60,000 spaces + 'x' completes: its all-blank chunks are skipped (as children they failed GB_ERR_EMPTY_INPUT and the parent waited forever)",
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '4',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '4096',
        GEMBATCH_CHUNK_OVERLAP_TOKENS: '0',
      });
      const jobId = await worker.submitText(`a${' '.repeat(60_000)}x`, 'summarize', { max_tokens: 16 });
      const view = await worker.settle(jobId, 60_000);
      expect(view.error).toBeNull();
      expect(view.status).toBe('completed');
    },
    90_000,
  );
});

describe('blank chunks of a redaction (issue 9)', () => {
  redisTest(
    "'MRN: …' + 40,000 spaces + an email, redacted in chunks: the blank chunks pass through and every identifier is masked",
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '4',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '4096',
        GEMBATCH_CHUNK_OVERLAP_TOKENS: '0',
      });
      const text = `MRN: A1234567${' '.repeat(40_000)}write to pat.doe@example.org`;
      // Deterministic detectors only: no model call, so the tiny model's random JSON cannot fail the job.
      const jobId = await worker.submitText(text, 'redact', { options: { types: ['mrn', 'email'] }, max_tokens: 16 });
      const view = await worker.settle(jobId, 60_000);
      expect(view.error).toBeNull();
      const document = await getJson(worker.blobs, await getJobResultSha256(worker.producer, jobId, 'default'), {
        parse: (v: unknown) => v as { output: { text: string }; chunks: number },
      });
      expect(document.chunks).toBeGreaterThan(1);
      expect(document.output.text.startsWith('[MRN] ')).toBe(true);
      expect(document.output.text.endsWith(' write to [EMAIL]')).toBe(true);
      // Within a few characters of the input's length: chunk texts come back from detokenizing, which drops a
      // leading blank per chunk boundary (a known limit of chunked concatenation, not of the blank chunks).
      expect(
        Math.abs(document.output.text.length - `[MRN]${' '.repeat(40_000)}write to [EMAIL]`.length),
      ).toBeLessThanOrEqual(document.chunks);
    },
    90_000,
  );
});
