import { describe, expect, it } from 'vitest';
import { jobSpecOf, type ExtractJobData } from './jobs.ts';

const extract: ExtractJobData = {
  job_id: 'job_1',
  tenant: 'acme',
  task: 'summarize',
  options: {},
  max_tokens: 64,
  submitted_at: 1_700_000_000_000,
  file: { id: 'file_1', sha256: 'a'.repeat(64), bytes: 3, filename: 'a.txt' },
  password: 'secret',
  priority: 5,
};

describe('jobSpecOf', () => {
  it('keeps only the spec fields, so the file, password and priority do not follow the job on', () => {
    expect(jobSpecOf(extract)).toStrictEqual({
      job_id: 'job_1',
      tenant: 'acme',
      task: 'summarize',
      options: {},
      max_tokens: 64,
      submitted_at: 1_700_000_000_000,
    });
  });

  it('carries the optional fields that are set', () => {
    const spec = jobSpecOf({ ...extract, temperature: 0, json_schema: { type: 'object' }, metadata: { k: 'v' } });
    expect(spec).toMatchObject({ temperature: 0, json_schema: { type: 'object' }, metadata: { k: 'v' } });
  });
});
