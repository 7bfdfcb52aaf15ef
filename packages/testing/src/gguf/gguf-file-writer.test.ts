import { describe, expect, test } from 'vitest';
import { quantizeQ8_0 } from './gguf-file-writer.ts';
import { fromHalfBits } from './half-float.ts';

describe('quantizeQ8_0', () => {
  test('writes an f16 scale and 32 int8s per block, max magnitude at ±127', () => {
    const values = new Float32Array(64);
    for (let i = 0; i < 32; i++) values[i] = (i - 16) / 8;
    values[40] = -3;
    const out = quantizeQ8_0(values);
    expect(out.length).toBe(68);
    const d0 = fromHalfBits(out.readUInt16LE(0));
    expect(d0).toBeCloseTo(2 / 127, 4);
    expect(out.readInt8(2)).toBe(-127);
    expect(out.readInt8(2 + 16)).toBe(0);
    expect(fromHalfBits(out.readUInt16LE(34))).toBeCloseTo(3 / 127, 4);
    expect(out.readInt8(34 + 2 + 8)).toBe(-127);
    for (let i = 0; i < 32; i++) expect(out.readInt8(2 + i) * d0).toBeCloseTo(values[i] ?? 0, 1);
  });

  test('an all-zero block has scale 0 and zero quants', () => {
    expect([...quantizeQ8_0(new Float32Array(32))].every((byte) => byte === 0)).toBe(true);
  });
});
