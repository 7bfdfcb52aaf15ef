import { describe, expect, it } from 'vitest';
import { redisKeys } from '@gembatch/contracts';
import { forgetRecorded, outcomeWrites, type InflightRequest } from './batch-feeder.ts';
import { decodeOutcome } from './request-outcomes.ts';

const done = (prompt: number, generated: number) =>
  ({ ok: true, sha: 'a'.repeat(64), at: 1, usage: { prompt_tokens: prompt, generated_tokens: generated } }) as const;
const failed = { ok: false, code: 'GB_ERR_CONTEXT_OVERFLOW', message: 'too long', at: 2 } as const;

describe('outcomeWrites', () => {
  it('writes each batch once: every job outcome, every in-flight index, counters summed (tokens once per job)', () => {
    const writes = outcomeWrites('p', [
      // Two identical requests share job j1: two requests count, its tokens once.
      {
        jobId: 'j1',
        requests: [
          { batchId: 'b1', index: 0 },
          { batchId: 'b1', index: 3 },
        ],
        outcome: done(10, 2),
      },
      { jobId: 'j2', requests: [{ batchId: 'b1', index: 1 }], outcome: failed },
      { jobId: 'j3', requests: [{ batchId: 'b2', index: 0 }], outcome: done(5, 1) },
      { jobId: 'j4', requests: [], outcome: done(1, 1) },
    ]);
    expect([...writes.keys()]).toEqual(['b1', 'b2']);
    const b1 = writes.get('b1') ?? [];
    const [hset, hdel, ...counters] = b1;
    expect(hset?.slice(0, 2)).toEqual(['HSET', redisKeys.batchOutcomes('p', 'b1')]);
    expect(hset?.filter((_, i) => i >= 2 && i % 2 === 0)).toEqual(['j1', 'j2']);
    expect(decodeOutcome(hset?.[5] ?? '')).toMatchObject({ ok: false, code: 'GB_ERR_CONTEXT_OVERFLOW' });
    expect(hdel).toEqual(['HDEL', redisKeys.batchInflight('p', 'b1'), '0', '3', '1']);
    expect(counters).toEqual([
      ['HINCRBY', redisKeys.batch('p', 'b1'), 'completed', '2'],
      ['HINCRBY', redisKeys.batch('p', 'b1'), 'failed', '1'],
      ['HINCRBY', redisKeys.batch('p', 'b1'), 'input_tokens', '10'],
      ['HINCRBY', redisKeys.batch('p', 'b1'), 'output_tokens', '2'],
    ]);
    expect(
      writes
        .get('b2')
        ?.filter((w) => w[0] === 'HINCRBY')
        .map((w) => w[2]),
    ).toEqual(['completed', 'input_tokens', 'output_tokens']);
  });
});

describe('forgetRecorded', () => {
  it('drops only the requests whose batch was written; a failed batch stays in flight to be recorded again', () => {
    const byJob = new Map<string, InflightRequest[]>([
      ['j1', [{ batchId: 'b1', index: 0 }]],
      ['j2', [{ batchId: 'b2', index: 0 }]],
      [
        'j3',
        [
          { batchId: 'b1', index: 1 },
          { batchId: 'b2', index: 1 },
        ],
      ],
      ['j4', []],
      ['still-running', [{ batchId: 'b1', index: 2 }]],
    ]);
    const inflightCount = new Map([
      ['b1', 3],
      ['b2', 2],
    ]);
    forgetRecorded({ byJob, inflightCount }, ['j1', 'j2', 'j3', 'j4'], new Set(['b1']));
    expect([...byJob.keys()]).toEqual(['j2', 'j3', 'still-running']);
    expect(byJob.get('j3')).toEqual([{ batchId: 'b2', index: 1 }]);
    expect(Object.fromEntries(inflightCount)).toEqual({ b1: 1, b2: 2 });
  });
});
