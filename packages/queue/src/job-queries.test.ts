import { describe, expect, it } from 'vitest';
import { GembatchError, type GenerateJobResult } from '@gembatch/contracts';
import { toJobView, type CancelMarker, type JobStageSnapshot } from './job-queries.ts';

const JOB = 'job_0123456789abcdef0123456789abcdef';
const SUBMITTED = Date.UTC(2026, 10, 28, 12, 0, 0);
const spec = {
  job_id: JOB,
  tenant: 'acme',
  task: 'summarize',
  options: { length: 'short' },
  max_tokens: 64,
  submitted_at: SUBMITTED,
  metadata: { ref: 'a-1' },
};
const extractData = {
  ...spec,
  file: { id: 'file_0123456789abcdef0123456789abcdef', sha256: 'a'.repeat(64), bytes: 10, filename: 'x.pdf' },
};
const generateData = {
  ...spec,
  input: { type: 'document', sha256: 'b'.repeat(64), file_id: extractData.file.id, media_type: 'application/pdf' },
};
const result: GenerateJobResult = {
  result_sha256: 'c'.repeat(64),
  usage: { prompt_tokens: 100, generated_tokens: 20, media_tokens: 0 },
  timings: {
    queue_wait_ms: 5,
    extract_ms: 40,
    time_to_first_token_ms: 12,
    inter_token_ms: 3,
    generate_ms: 90,
    total_ms: 140,
  },
  finish_reason: 'stop',
  node: 'node-a',
  model: 'tiny',
  chunks: 1,
};

function extract(state: JobStageSnapshot['state'], extra: Partial<JobStageSnapshot> = {}): JobStageSnapshot {
  return { queue: 'extract', state, data: extractData, progress: 0, attemptsMade: 0, returnvalue: null, ...extra };
}
function generate(state: JobStageSnapshot['state'], extra: Partial<JobStageSnapshot> = {}): JobStageSnapshot {
  return { queue: 'generate', state, data: generateData, progress: 0, attemptsMade: 0, returnvalue: null, ...extra };
}

describe('toJobView', () => {
  it.each([
    [[extract('waiting')], 'queued'],
    [[extract('prioritized')], 'queued'],
    [[extract('delayed')], 'queued'],
    [[extract('active')], 'extracting'],
    [[extract('completed')], 'queued'],
    [[extract('completed'), generate('waiting')], 'queued'],
    [[extract('completed'), generate('active')], 'running'],
    [[extract('completed'), generate('waiting-children')], 'running'],
    [[extract('completed'), generate('completed', { returnvalue: result })], 'completed'],
    [[extract('failed', { failedReason: 'GB_ERR_PDF_INVALID: bad xref' })], 'failed'],
    [[extract('completed'), { ...generate('active'), queue: 'generate-media' as const }], 'running'],
  ] as const)('maps %j to %s', (stages, status) => {
    expect(toJobView(JOB, stages, undefined).status).toBe(status);
  });

  it('takes the furthest stage, the first start and the last finish', () => {
    const view = toJobView(
      JOB,
      [
        extract('completed', { processedOn: SUBMITTED + 10, finishedOn: SUBMITTED + 50 }),
        generate('completed', { processedOn: SUBMITTED + 60, finishedOn: SUBMITTED + 200, returnvalue: result }),
      ],
      undefined,
    );
    expect(view).toEqual({
      id: JOB,
      object: 'job',
      task: 'summarize',
      status: 'completed',
      progress: 100,
      created_at: new Date(SUBMITTED).toISOString(),
      started_at: new Date(SUBMITTED + 10).toISOString(),
      finished_at: new Date(SUBMITTED + 200).toISOString(),
      usage: result.usage,
      timings: result.timings,
      finish_reason: 'stop',
      error: null,
      input: { file_id: extractData.file.id, media_type: 'application/pdf' },
      metadata: { ref: 'a-1' },
    });
  });

  it('decodes a final failure and carries the last error of a job that will retry', () => {
    const failed = toJobView(
      JOB,
      [
        extract('failed', {
          failedReason: 'GB_ERR_PDF_PASSWORD_REQUIRED: needs a password',
          finishedOn: SUBMITTED + 9,
        }),
      ],
      undefined,
    );
    expect(failed.error).toEqual({ code: 'GB_ERR_PDF_PASSWORD_REQUIRED', message: 'needs a password' });
    expect(failed.finished_at).toBe(new Date(SUBMITTED + 9).toISOString());
    const retrying = toJobView(
      JOB,
      [generate('delayed', { failedReason: 'GB_ERR_INFERENCE: decode failed', attemptsMade: 1 })],
      undefined,
    );
    expect(retrying.status).toBe('queued');
    expect(retrying.error).toEqual({ code: 'GB_ERR_INFERENCE', message: 'decode failed' });
    expect(retrying.finished_at).toBeNull();
    expect(toJobView(JOB, [generate('failed', { failedReason: 'out of memory' })], undefined).error).toEqual({
      code: 'GB_ERR_INTERNAL',
      message: 'out of memory',
    });
  });

  it('reports progress of running stages, clamped to 0..100', () => {
    expect(toJobView(JOB, [generate('active', { progress: 42.4 })], undefined).progress).toBe(42);
    expect(toJobView(JOB, [generate('active', { progress: 250 })], undefined).progress).toBe(100);
    expect(toJobView(JOB, [generate('active', { progress: { custom: true } })], undefined).progress).toBe(0);
    expect(toJobView(JOB, [generate('waiting', { progress: 50 })], undefined).progress).toBe(0);
  });

  it('reads cancelled from the marker, with or without the stages', () => {
    const marker: CancelMarker = {
      tenant: 'acme',
      task: 'summarize',
      submitted_at: SUBMITTED,
      cancelled_at: SUBMITTED + 99,
      input: { file_id: extractData.file.id },
      metadata: { ref: 'a-1' },
    };
    const removed = toJobView(JOB, [], marker);
    expect(removed).toMatchObject({
      status: 'cancelled',
      task: 'summarize',
      error: { code: 'GB_ERR_CANCELLED' },
      finished_at: new Date(SUBMITTED + 99).toISOString(),
      input: { file_id: extractData.file.id },
      metadata: { ref: 'a-1' },
    });
    expect(toJobView(JOB, [extract('completed'), generate('active', { progress: 30 })], marker).status).toBe(
      'cancelled',
    );
  });

  it('treats a job that is not a gembatch job as not found', () => {
    expect(() => toJobView(JOB, [{ ...generate('waiting'), data: { foreign: true } }], undefined)).toThrow(
      GembatchError,
    );
    expect(() => toJobView(JOB, [], undefined)).toThrow(expect.objectContaining({ code: 'GB_ERR_NOT_FOUND' }));
  });
});
