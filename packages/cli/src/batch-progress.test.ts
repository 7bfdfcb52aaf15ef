import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BatchProgress, formatDuration } from './batch-progress.ts';

describe('BatchProgress', () => {
  it('shows done/failed/total, tok/s from the batch usage, and an ETA from the finishing rate', () => {
    let now = 1_000_000;
    const bar = new BatchProgress(undefined, () => now);
    expect(
      bar.line({
        status: 'in_progress',
        request_counts: { total: 100, completed: 0, failed: 0 },
        usage: { output_tokens: 0 },
      }),
    ).toBe('[------------------------------] 0/100 done · 0 failed · in_progress');
    now += 10_000;
    // 20 finished in 10 s → 80 left at 2/s = 40 s; 500 tokens in 10 s = 50 tok/s.
    expect(
      bar.line({
        status: 'in_progress',
        request_counts: { total: 100, completed: 18, failed: 2 },
        usage: { output_tokens: 500 },
      }),
    ).toBe('[######------------------------] 20/100 done · 2 failed · 50.0 tok/s · ETA 40s · in_progress');
  });

  it('leaves tok/s out when the server reports no usage, and draws in place on a TTY', () => {
    let now = 0;
    const out = Object.assign(new PassThrough(), { isTTY: true });
    const written: string[] = [];
    out.on('data', (chunk: Buffer) => written.push(chunk.toString()));
    const bar = new BatchProgress(out, () => now);
    bar.update({ status: 'in_progress', request_counts: { total: 4, completed: 0, failed: 0 } });
    now = 2_000;
    bar.update({ status: 'in_progress', request_counts: { total: 4, completed: 2, failed: 0 } });
    bar.finish({ status: 'completed', request_counts: { total: 4, completed: 4, failed: 0 } });
    expect(written.join('')).not.toContain('tok/s');
    expect(written[1]).toBe('\r\x1b[2K[###############---------------] 2/4 done · 0 failed · ETA 2s · in_progress');
    expect(written.at(-1)).toBe('\r\x1b[2K[##############################] 4/4 done · 0 failed · completed\n');
  });

  it('says validating until the lines are counted', () => {
    expect(
      new BatchProgress(undefined).line({
        status: 'validating',
        request_counts: { total: 0, completed: 0, failed: 0 },
      }),
    ).toBe('validating the input…');
  });

  it('formats durations', () => {
    expect([formatDuration(5), formatDuration(185), formatDuration(7_800)]).toEqual(['5s', '3m 05s', '2h 10m']);
  });
});
