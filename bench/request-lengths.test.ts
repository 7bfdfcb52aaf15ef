import { describe, expect, it } from 'vitest';
import { requestTokens } from './request-lengths.ts';

describe('requestTokens', () => {
  it('spreads lengths over tokens ± spread with the mean of tokens, whatever request a phase starts at', () => {
    for (const first of [0, 192, 1000]) {
      const lengths = Array.from({ length: 64 }, (_, j) => requestTokens(64, 0.5, first + j));
      expect(Math.min(...lengths)).toBe(32);
      expect(Math.max(...lengths)).toBe(96);
      expect(new Set(lengths).size).toBeGreaterThan(50);
      expect(Math.abs(lengths.reduce((a, b) => a + b, 0) / 64 - 64)).toBeLessThan(0.5);
    }
  });

  it('keeps one length without a spread and for one-token requests', () => {
    expect(Array.from({ length: 8 }, (_, i) => requestTokens(64, 0, i))).toEqual(Array(8).fill(64));
    expect(Array.from({ length: 8 }, (_, i) => requestTokens(1, 0.5, i))).toEqual(Array(8).fill(1));
  });
});
