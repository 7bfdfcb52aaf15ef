import { describe, expect, it } from 'vitest';
import { decodeWindows1252, legacyDecoder } from './windows-1252.ts';

describe('decodeWindows1252', () => {
  it('maps 0x80–0x9F to the Windows characters and the rest as Latin-1', () => {
    expect(decodeWindows1252(Buffer.from([0x80, 0x93, 0x48, 0x94, 0xe9, 0x81]))).toBe('€“H”é\uFFFD');
  });

  it('hands other code pages to TextDecoder', () => {
    expect(legacyDecoder('windows-1251').decode(Buffer.from([0xcf, 0xf0, 0xe8]))).toBe('При');
  });
});
