import { open } from 'node:fs/promises';
import path from 'node:path';
import { GembatchError } from '@gembatch/contracts';
import type { MediaInput } from '../engine.ts';

/** A media file that exists, is not empty and is in a format llama.cpp decodes without loss. */
export interface CheckedMedia {
  kind: 'image' | 'audio';
  /** Absolute path. */
  path: string;
  format: 'jpeg' | 'png' | 'wav' | 'mp3';
  bytes: number;
}

/** What the loaded projector can take. */
export interface MediaSupport {
  image: boolean;
  audio: boolean;
}

/** Bytes read from the head of a file to recognise its format (RIFF/WAVE needs 12). */
const MAGIC_BYTES = 12;

/** The format a file's first bytes announce, among those this engine passes to llama.cpp. */
export function sniffMediaFormat(head: Uint8Array): CheckedMedia['format'] | undefined {
  const at = (index: number) => head[index] ?? -1;
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (at(0) === 0xff && at(1) === 0xd8 && at(2) === 0xff) return 'jpeg';
  if (at(0) === 0x89 && ascii(1, 4) === 'PNG' && at(4) === 0x0d && at(5) === 0x0a && at(6) === 0x1a && at(7) === 0x0a)
    return 'png';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WAVE') return 'wav';
  // MP3: an ID3v2 tag, or an MPEG audio frame sync (11 set bits).
  if (ascii(0, 3) === 'ID3' || (at(0) === 0xff && at(1) >= 0 && (at(1) & 0xe0) === 0xe0)) return 'mp3';
  return undefined;
}

const ACCEPTED: Record<CheckedMedia['kind'], ReadonlyArray<CheckedMedia['format']>> = {
  image: ['jpeg', 'png'],
  audio: ['wav', 'mp3'],
};

/**
 * Checks every media file before it reaches llama.cpp, which would abort on a missing file and
 * silently drop a WebP. Errors name the media by position and kind, never by content:
 * `GB_ERR_UNSUPPORTED_MEDIA` (kind the projector lacks, or a format other than JPEG/PNG for
 * images and WAV/MP3 for audio), `GB_ERR_FILE_NOT_FOUND`, `GB_ERR_EMPTY_INPUT`.
 */
export async function checkMediaFiles(media: readonly MediaInput[], support: MediaSupport): Promise<CheckedMedia[]> {
  const checked: CheckedMedia[] = [];
  for (const [index, item] of media.entries()) {
    const label = `media ${index + 1} (${item.kind})`;
    if (item.kind !== 'image' && item.kind !== 'audio') {
      throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', `${label}: kind must be image or audio`, {
        details: { index },
      });
    }
    if (!support[item.kind]) {
      throw new GembatchError(
        'GB_ERR_UNSUPPORTED_MEDIA',
        `${label}: the loaded projector has no ${item.kind} support`,
        { details: { index, kind: item.kind } },
      );
    }
    const absolute = path.resolve(item.path);
    const { bytes, head } = await readHead(absolute, label, index);
    if (bytes === 0)
      throw new GembatchError('GB_ERR_EMPTY_INPUT', `${label}: the file is empty`, {
        details: { index, kind: item.kind, bytes },
      });
    const format = sniffMediaFormat(head);
    if (!format || !ACCEPTED[item.kind].includes(format)) {
      const expected =
        item.kind === 'image'
          ? 'JPEG or PNG (normalise other formats first: llama.cpp drops WebP silently)'
          : 'WAV or MP3';
      throw new GembatchError(
        'GB_ERR_UNSUPPORTED_MEDIA',
        `${label}: expected ${expected}, found ${format ?? 'an unrecognised format'}`,
        { details: { index, kind: item.kind, bytes } },
      );
    }
    checked.push({ kind: item.kind, path: absolute, format, bytes });
  }
  return checked;
}

async function readHead(file: string, label: string, index: number): Promise<{ bytes: number; head: Uint8Array }> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw new GembatchError('GB_ERR_FILE_NOT_FOUND', `${label}: the file cannot be opened`, {
      cause: error,
      details: { index },
    });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile())
      throw new GembatchError('GB_ERR_FILE_NOT_FOUND', `${label}: not a regular file`, { details: { index } });
    const head = new Uint8Array(MAGIC_BYTES);
    const { bytesRead } = await handle.read(head, 0, MAGIC_BYTES, 0);
    return { bytes: stat.size, head: head.subarray(0, bytesRead) };
  } finally {
    await handle.close();
  }
}
