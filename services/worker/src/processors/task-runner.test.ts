import { describe, expect, it } from 'vitest';
import type { JobSpec } from '@gembatch/contracts';
import type { Engine } from '@gembatch/inference';
import { TaskRunner } from './task-runner.ts';

const spec: JobSpec = {
  job_id: 'job_0123456789abcdef0123456789abcdef',
  tenant: 'default',
  task: 'prompt',
  options: { instruction: 'Reply.' },
  max_tokens: 8,
  submitted_at: 0,
};

describe('TaskRunner.request', () => {
  // `request` only builds the engine request; no engine call is made, so none is needed.
  const runner = new TaskRunner({ engine: undefined as unknown as Engine, schemaRepairs: 0 });

  it("carries a batch chat request's temperature to the engine, and leaves the engine default otherwise", () => {
    expect(runner.request({ ...spec, temperature: 0.7 }, { text: 'hi', media: [] }).temperature).toBe(0.7);
    expect(runner.request(spec, { text: 'hi', media: [] })).not.toHaveProperty('temperature');
  });
});
