import { describe, expect, it } from 'vitest';
import { shareBatch } from './decode-counters.ts';

const items = (...lengths: number[]) => lengths.map((n) => ({ tokens: Array<number>(n).fill(1) }));
const amounts = (lengths: number[], size: number) => {
  const out = Array<number>(lengths.length).fill(0);
  for (const { index, processAmount } of shareBatch(items(...lengths), size)) out[index] = processAmount;
  return out;
};

describe('shareBatch', () => {
  it('gives everything when it fits', () => {
    expect(amounts([1, 1, 40, 3], 512)).toEqual([1, 1, 40, 3]);
  });

  it('shares prompt tokens evenly, not in arrival order (one llama.cpp ubatch instead of several)', () => {
    // 16 prompts of 46 tokens in a 512-token batch: 32 each, not 46 x 11 + a remainder + 1 x 4.
    expect(amounts(Array<number>(16).fill(46), 512)).toEqual(Array<number>(16).fill(32));
    const planned = amounts([10, 200, 200, 200], 300);
    expect(planned[0]).toBe(10);
    expect(planned.slice(1)).toEqual([96, 96, 96]);
    expect(planned.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(300);
  });

  it('still moves every generating sequence by one token next to a long prompt', () => {
    const planned = amounts([1, 1, 1, 900], 64);
    expect(planned).toEqual([1, 1, 1, 61]);
  });

  it('never plans more than the batch holds', () => {
    for (const lengths of [[5, 700, 3, 90, 1], Array<number>(40).fill(30), [2, 2, 2]]) {
      for (const size of [3, 16, 100, 512]) {
        const planned = amounts(lengths, size);
        expect(planned.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(size);
        planned.forEach((amount, i) => expect(amount).toBeLessThanOrEqual(lengths[i] as number));
      }
    }
  });
});
