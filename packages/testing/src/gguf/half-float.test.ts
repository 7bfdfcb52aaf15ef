import { describe, expect, test } from 'vitest';
import { fromHalfBits, toHalfBits } from './half-float.ts';

describe('toHalfBits', () => {
  test.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001],
    [2 ** -14, 0x0400],
  ])('%d → 0x%s', (value, bits) => {
    expect(toHalfBits(value)).toBe(bits);
  });

  test('NaN stays NaN', () => {
    expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true);
  });

  test('rounds to nearest, ties to even', () => {
    // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3·2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(toHalfBits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
  });

  test('round-trips within half precision', () => {
    for (const value of [0.1, -0.333, 3.14159, 1234.5, 6e-5]) {
      expect(Math.abs(fromHalfBits(toHalfBits(value)) - value) / Math.abs(value)).toBeLessThan(2 ** -10);
    }
  });
});
