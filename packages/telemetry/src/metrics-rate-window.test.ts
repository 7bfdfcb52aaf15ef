import { describe, expect, it } from 'vitest';
import { RateWindow } from './metrics-rate-window.ts';

describe('RateWindow', () => {
  it('is zero without an earlier sample', () => {
    const window = new RateWindow(60_000);
    expect(window.rates(1_000, [5, 7])).toEqual([0, 0]);
    window.add(1_000, [5, 7]);
    expect(window.rates(1_000, [5, 7])).toEqual([0, 0]);
  });

  it('averages since the first sample until a full window has passed', () => {
    const window = new RateWindow(60_000);
    window.add(0, [0]);
    window.add(2_000, [10]);
    expect(window.rates(4_000, [40])).toEqual([10]);
  });

  it('uses the value at the window start once the window is full, and drops older samples', () => {
    const window = new RateWindow(60_000);
    // 100 tokens/s for the first minute, then 20/s: the rate over the last 60 s must be 20/s.
    const value = (t: number) => (t <= 60_000 ? t / 10 : 6_000 + (t - 60_000) / 50);
    for (let t = 0; t <= 120_000; t += 2_000) window.add(t, [value(t)]);
    expect(window.rates(122_000, [value(122_000)])[0]).toBeCloseTo(20);
  });

  it('falls to zero after a minute without tokens and ignores counters that went backwards', () => {
    const window = new RateWindow(60_000);
    window.add(0, [0, 100]);
    window.add(2_000, [500, 100]);
    for (let t = 4_000; t <= 64_000; t += 2_000) window.add(t, [500, 100]);
    expect(window.rates(66_000, [500, 50])).toEqual([0, 0]);
  });
});
