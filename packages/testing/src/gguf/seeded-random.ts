/**
 * mulberry32: a tiny, fast 32-bit PRNG. Same seed, same sequence, on every machine, which is what
 * makes generated models byte-for-byte reproducible. Not for anything that needs real randomness.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    // Constants from the reference mulberry32 implementation.
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes a base seed with a stream number (e.g. a tensor's index) into an independent seed (FNV-1a style). */
export function deriveSeed(seed: number, stream: number): number {
  // FNV-1a 32-bit offset basis and prime.
  let hash = 0x811c9dc5;
  for (const value of [seed, stream]) {
    for (let shift = 0; shift < 32; shift += 8) {
      hash ^= (value >>> shift) & 0xff;
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
  }
  return hash;
}
