import { describe, expect, it } from 'vitest';
import { pcm16MonoToWav } from './wav-file.ts';

describe('pcm16MonoToWav', () => {
  it('writes a canonical 44-byte PCM header for 16-bit mono', () => {
    const wav = pcm16MonoToWav(Buffer.alloc(320), 16_000);
    expect(wav.length).toBe(364);
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(4)).toBe(356);
    expect(wav.toString('ascii', 8, 16)).toBe('WAVEfmt ');
    expect([
      wav.readUInt16LE(20),
      wav.readUInt16LE(22),
      wav.readUInt32LE(24),
      wav.readUInt32LE(28),
      wav.readUInt16LE(32),
      wav.readUInt16LE(34),
    ]).toEqual([1, 1, 16_000, 32_000, 2, 16]);
    expect(wav.toString('ascii', 36, 40)).toBe('data');
    expect(wav.readUInt32LE(40)).toBe(320);
  });
});
