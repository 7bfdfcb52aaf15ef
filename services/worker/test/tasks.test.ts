import { describe, expect } from 'vitest';
import type { JobResultDocument } from '@gembatch/contracts';
import { getJobResultSha256 } from '@gembatch/queue';
import { getJson } from '@gembatch/storage';
import { ensureTestModel, redisTest } from '@gembatch/testing';
import { startWorker, TENANT, type WorkerHarness } from './worker-harness.ts';

async function output(worker: WorkerHarness, jobId: string): Promise<unknown> {
  const view = await worker.settle(jobId, 90_000);
  expect(view.error, jobId).toBeNull();
  return (
    await getJson(worker.blobs, await getJobResultSha256(worker.producer, jobId, TENANT), {
      parse: (v: unknown) => v as JobResultDocument,
    })
  ).output;
}

const NOTE =
  'Clinic note. Patient MRN: 00A12345 seen on 03/14/2026. Contact: pat.doe@example.org or (555) 010-7788. SSN 123-45-6789. Lives at 9 Birch Lane.';

describe('built-in tasks on a real worker', () => {
  redisTest(
    'classify, extract, redact and prompt with a JSON Schema return their output shapes',
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '4',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '2048',
      });
      const labels = ['invoice', 'lease', 'clinic note'];
      const [classify, extract, redact, prompt] = await Promise.all([
        worker.submitText(NOTE, 'classify', { options: { labels }, max_tokens: 48 }),
        // Fields a grammar bounds completely, so even random weights must produce valid JSON. An open
        // `integer` is not: its digits are unbounded, and random weights wrote more than a double holds.
        worker.submitText(NOTE, 'extract', {
          options: {
            schema: {
              type: 'object',
              properties: {
                has_mrn: { type: 'boolean' },
                visit_year: { type: 'integer', enum: [2023, 2024, 2025] },
                kind: { enum: ['visit', 'referral'] },
              },
              required: ['has_mrn', 'visit_year', 'kind'],
              additionalProperties: false,
            },
          },
          max_tokens: 64,
        }),
        worker.submitText(NOTE, 'redact', { options: {}, max_tokens: 96 }),
        worker.submitText(NOTE, 'prompt', {
          options: { instruction: 'Is a follow-up needed?' },
          json_schema: { type: 'object', properties: { follow_up: { type: 'boolean' } }, required: ['follow_up'] },
          max_tokens: 32,
        }),
      ]);

      const label = (await output(worker, classify)) as { label: string; confidence: number };
      expect(labels).toContain(label.label);
      expect(label.confidence).toBeGreaterThanOrEqual(0);
      expect(label.confidence).toBeLessThanOrEqual(1);

      const extracted = (await output(worker, extract)) as {
        data: { has_mrn: boolean; visit_year: number; kind: string };
      };
      expect(typeof extracted.data.has_mrn).toBe('boolean');
      expect(Number.isInteger(extracted.data.visit_year)).toBe(true);
      expect(['visit', 'referral']).toContain(extracted.data.kind);

      // The deterministic detectors mask every identifier whatever the (random-weight) model says.
      const redacted = (await output(worker, redact)) as {
        text: string;
        spans: Array<{ start: number; end: number; type: string }>;
      };
      for (const value of [
        '00A12345',
        '03/14/2026',
        'pat.doe@example.org',
        '(555) 010-7788',
        '123-45-6789',
        '9 Birch Lane',
      ])
        expect(redacted.text).not.toContain(value);
      expect(redacted.spans.map((s) => s.type)).toEqual(
        expect.arrayContaining(['mrn', 'date', 'email', 'phone', 'ssn', 'address']),
      );
      for (const span of redacted.spans) expect(NOTE.slice(span.start, span.end).length).toBe(span.end - span.start);

      const answer = (await output(worker, prompt)) as { text: string; data: { follow_up: boolean } };
      expect(typeof answer.data.follow_up).toBe('boolean');
      expect(JSON.parse(answer.text)).toEqual(answer.data);
    },
    120_000,
  );

  redisTest(
    'a schema the output cannot meet fails with GB_ERR_SCHEMA_VALIDATION carrying the validator message',
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '2',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '2048',
        GEMBATCH_SCHEMA_REPAIRS: '1',
      });
      // Bounds no integer meets: the grammar still yields well-formed JSON, the validator rejects it every time.
      const schema = {
        type: 'object',
        properties: { visits: { type: 'integer', minimum: 10, maximum: 5 } },
        required: ['visits'],
      };
      const view = await worker.settle(
        await worker.submitText(NOTE, 'extract', { options: { schema }, max_tokens: 24 }),
        90_000,
      );
      expect(view.status).toBe('failed');
      expect(view.error?.code).toBe('GB_ERR_SCHEMA_VALIDATION');
      // One try plus one repair, and the validator's own words.
      expect(view.error?.message).toMatch(/2 attempt\(s\)/);
      expect(view.error?.message).toMatch(/visits must be/);
    },
    120_000,
  );
});
