import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMediaFiles, sniffMediaFormat } from './media-file-check.ts';

const JPEG = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0, 1]);
const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]);
const WAV = new TextEncoder().encode('RIFF\x24\x00\x00\x00WAVEfmt ');
const WEBP = new TextEncoder().encode('RIFF\x24\x00\x00\x00WEBPVP8 ');
const both = { image: true, audio: true };

describe('sniffMediaFormat', () => {
  it('recognises the formats llama.cpp decodes', () => {
    expect(sniffMediaFormat(JPEG)).toBe('jpeg');
    expect(sniffMediaFormat(PNG)).toBe('png');
    expect(sniffMediaFormat(WAV)).toBe('wav');
    expect(sniffMediaFormat(new TextEncoder().encode('ID3\x04'))).toBe('mp3');
    expect(sniffMediaFormat(Uint8Array.from([0xff, 0xfb, 0x90, 0x64]))).toBe('mp3');
  });

  it('does not mistake WebP (also RIFF) for WAV, nor short heads for anything', () => {
    expect(sniffMediaFormat(WEBP)).toBeUndefined();
    expect(sniffMediaFormat(Uint8Array.from([0xff]))).toBeUndefined();
    expect(sniffMediaFormat(new Uint8Array())).toBeUndefined();
  });
});

describe('checkMediaFiles', () => {
  let dir: string;
  const file = (name: string) => path.join(dir, name);
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gb-media-check-'));
    await writeFile(file('a.jpg'), JPEG);
    await writeFile(file('b.png'), PNG);
    await writeFile(file('c.wav'), WAV);
    await writeFile(file('d.webp'), WEBP);
    await writeFile(file('empty.png'), new Uint8Array());
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes good files with their format and size', async () => {
    const checked = await checkMediaFiles(
      [
        { kind: 'image', path: file('a.jpg') },
        { kind: 'image', path: file('b.png') },
        { kind: 'audio', path: file('c.wav') },
      ],
      both,
    );
    expect(checked.map((m) => [m.kind, m.format, m.bytes])).toEqual([
      ['image', 'jpeg', 12],
      ['image', 'png', 12],
      ['audio', 'wav', 16],
    ]);
  });

  it.each([
    ['a missing file', { kind: 'image' as const, path: 'missing.jpg' }, 'GB_ERR_FILE_NOT_FOUND'],
    ['a folder', { kind: 'image' as const, path: '.' }, 'GB_ERR_FILE_NOT_FOUND'],
    ['an empty file', { kind: 'image' as const, path: 'empty.png' }, 'GB_ERR_EMPTY_INPUT'],
    ['a WebP image', { kind: 'image' as const, path: 'd.webp' }, 'GB_ERR_UNSUPPORTED_MEDIA'],
    ['a WAV passed as an image', { kind: 'image' as const, path: 'c.wav' }, 'GB_ERR_UNSUPPORTED_MEDIA'],
    ['a JPEG passed as audio', { kind: 'audio' as const, path: 'a.jpg' }, 'GB_ERR_UNSUPPORTED_MEDIA'],
  ])('rejects %s', async (_name, media, code) => {
    await expect(
      checkMediaFiles([{ ...media, path: media.path === '.' ? dir : file(media.path) }], both),
    ).rejects.toMatchObject({ code });
  });

  it('rejects a kind the projector lacks', async () => {
    await expect(
      checkMediaFiles([{ kind: 'audio', path: file('c.wav') }], { image: true, audio: false }),
    ).rejects.toMatchObject({
      code: 'GB_ERR_UNSUPPORTED_MEDIA',
      message: expect.stringContaining('no audio support'),
    });
  });

  it('never puts the path in the message', async () => {
    await expect(checkMediaFiles([{ kind: 'image', path: file('secret-name.jpg') }], both)).rejects.toSatisfy(
      (error: Error) => !error.message.includes('secret-name'),
    );
  });
});
