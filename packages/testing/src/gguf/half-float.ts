const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * IEEE 754 binary16 bits of a number, rounded to nearest even (as ggml's `GGML_FP32_TO_FP16`).
 * Overflow gives ±Inf, NaN stays NaN, tiny values become subnormals or ±0.
 */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const bits = u32[0] ?? 0;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  // Re-bias from float32 (127) to float16 (15).
  let halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half (or zero): shift the implicit leading 1 into the mantissa.
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    const half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const rounded = remainder > halfway || (remainder === halfway && (half & 1) === 1) ? half + 1 : half;
    return sign | rounded;
  }
  // Normal: keep 10 of the 23 mantissa bits, round the 13 dropped ones to nearest even.
  const dropped = mantissa & 0x1fff;
  let half = (halfExponent << 10) | (mantissa >>> 13);
  if (dropped > 0x1000 || (dropped === 0x1000 && (half & 1) === 1)) half += 1;
  halfExponent = half >>> 10;
  return sign | (halfExponent >= 0x1f ? 0x7c00 : half);
}

/** The number a binary16 bit pattern stands for (for tests and readers). */
export function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
