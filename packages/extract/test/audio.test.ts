import { readFile, writeFile } from 'node:fs/promises';
import { ExtractedDocument } from '@gembatch/contracts';
import {
  systemToolAvailable,
  tempDir,
  writeEmptyWav,
  writeSpeech,
  writeToneWav,
  writeVideo,
  type SpeechFormat,
  type TempDir,
} from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXTRACT_LIMITS, extractFile, type ExtractLimits, type ExtractOptions } from '../src/index.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

const toolsMissing =
  !systemToolAvailable('ffmpeg') || !systemToolAvailable('ffprobe') || !systemToolAvailable('espeak-ng');

let dir: TempDir;
let speech: Record<SpeechFormat, string>;
const file = (name: string) => `${dir.path}/${name}`;

function options(path: string, sink: MemoryBlobSink, limits: Partial<ExtractLimits> = {}): ExtractOptions {
  return {
    path,
    limits: { ...DEFAULT_EXTRACT_LIMITS, ...limits },
    scannedPages: 'auto',
    visionAvailable: true,
    putBlob: sink.put,
  };
}

/** Reads back a stored WAV segment: format fields and sample count. */
function readWav(bytes: Buffer) {
  return {
    riff: bytes.toString('ascii', 0, 4),
    format: bytes.readUInt16LE(20),
    channels: bytes.readUInt16LE(22),
    sampleRate: bytes.readUInt32LE(24),
    bitsPerSample: bytes.readUInt16LE(34),
    samples: bytes.readUInt32LE(40) / 2,
    peak: peakOf(bytes),
  };
}

function peakOf(wav: Buffer): number {
  let peak = 0;
  for (let offset = 44; offset + 1 < wav.length; offset += 2) peak = Math.max(peak, Math.abs(wav.readInt16LE(offset)));
  return peak;
}

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-audio-');
  if (toolsMissing) return;
  speech = await writeSpeech(dir.path, ['wav', 'mp3', 'flac', 'opus', 'm4a', 'ogg']);
});

afterAll(async () => {
  await dir.cleanup();
});

describe.skipIf(toolsMissing)('audio extraction', () => {
  it.each(['wav', 'mp3', 'flac', 'opus', 'm4a', 'ogg'] as const)(
    'decodes %s (from a file path) to 16 kHz mono 16-bit WAV',
    async (format) => {
      const sink = new MemoryBlobSink();
      const doc = await extractFile(options(speech[format], sink));
      expect(ExtractedDocument.parse(doc)).toEqual(doc);
      expect(doc.kinds).toEqual(['audio']);
      expect(doc.text).toBe('');
      expect(doc.media).toHaveLength(1);
      const part = doc.media[0];
      expect(part).toMatchObject({ kind: 'audio', mime: 'audio/wav', start_s: 0 });
      const wav = readWav(sink.get(part?.sha256 ?? ''));
      expect(wav).toMatchObject({ riff: 'RIFF', format: 1, channels: 1, sampleRate: 16_000, bitsPerSample: 16 });
      // The espeak sentence lasts about 4 s; codecs pad or trim a few milliseconds.
      expect(wav.samples / 16_000).toBeGreaterThan(3.5);
      expect(wav.samples / 16_000).toBeLessThan(4.5);
      expect(part?.end_s).toBeCloseTo(wav.samples / 16_000, 6);
      expect(wav.peak).toBeGreaterThan(1000);
      // espeak speaks at 22.05 kHz; Opus always runs at 48 kHz.
      expect(doc.meta).toMatchObject({
        segments: 1,
        sample_rate: 16_000,
        source_sample_rate: format === 'opus' ? 48_000 : 22_050,
      });
      expect(doc.warnings).toEqual([]);
    },
  );

  it('reads an M4A whose index (moov) sits at the end, which a pipe would decode to nothing', async () => {
    const bytes = await readFile(speech.m4a);
    expect(bytes.indexOf('moov')).toBeGreaterThan(bytes.indexOf('mdat'));
    const doc = await extractFile(options(speech.m4a, new MemoryBlobSink()));
    expect(doc.meta.duration_s).toBeGreaterThan(3.5);
  });

  it('takes the audio track of a video and refuses a video without one', async () => {
    const withAudio = await writeVideo(file('talk.mp4'), { audioFrom: speech.wav });
    const doc = await extractFile(options(withAudio, new MemoryBlobSink()));
    expect(doc.media_type).toBe('video/mp4');
    expect(doc.kinds).toEqual(['audio']);
    expect(doc.media).toHaveLength(1);
    expect(doc.meta).toMatchObject({ video_streams: 1 });
    const silent = await writeVideo(file('silent.mp4'));
    await expectErrorCode(extractFile(options(silent, new MemoryBlobSink())), 'GB_ERR_AUDIO_NO_STREAM');
  });

  it('cuts long audio into contiguous segments of at most the configured length (exactly at the limit when there is no pause)', async () => {
    const sink = new MemoryBlobSink();
    const doc = await extractFile(options(await writeToneWav(file('tone-65s.wav'), 65), sink));
    expect(doc.media.map((part) => [part.start_s, part.end_s])).toEqual([
      [0, 30],
      [30, 60],
      [60, 65],
    ]);
    const short = await extractFile(options(file('tone-65s.wav'), sink, { audioSegmentSeconds: 20 }));
    expect(short.media).toHaveLength(4);
    expect(short.media.every((part) => (part.end_s ?? 0) - (part.start_s ?? 0) <= 20)).toBe(true);
    const total = short.media.reduce((sum, part) => sum + readWav(sink.get(part.sha256)).samples, 0);
    expect(total).toBe(65 * 16_000);
  });

  it('refuses audio longer than the cap, and a segment length above 30 s', async () => {
    await expectErrorCode(
      extractFile(options(file('tone-65s.wav'), new MemoryBlobSink(), { maxAudioSeconds: 60 })),
      'GB_ERR_AUDIO_TOO_LONG',
    );
    await expectErrorCode(
      extractFile(options(file('tone-65s.wav'), new MemoryBlobSink(), { maxBytes: 1000 })),
      'GB_ERR_AUDIO_TOO_LONG',
    );
    await expectErrorCode(
      extractFile(options(file('tone-65s.wav'), new MemoryBlobSink(), { audioSegmentSeconds: 45 })),
      'GB_ERR_CONFIG',
    );
  });

  it('fails on audio with zero samples and on corrupt or cut-off files', async () => {
    await expectErrorCode(
      extractFile(options(await writeEmptyWav(file('empty.wav')), new MemoryBlobSink())),
      'GB_ERR_AUDIO_EMPTY',
    );
    const m4a = await readFile(speech.m4a);
    await writeFile(file('cut.m4a'), m4a.subarray(0, m4a.indexOf('moov') - 4));
    await expectErrorCode(extractFile(options(file('cut.m4a'), new MemoryBlobSink())), 'GB_ERR_AUDIO_INVALID');
  });

  it('decodes what is left of a truncated MP3 (ffmpeg reports no error for it)', async () => {
    const mp3 = await readFile(speech.mp3);
    await writeFile(file('half.mp3'), mp3.subarray(0, Math.floor(mp3.length / 2)));
    const doc = await extractFile(options(file('half.mp3'), new MemoryBlobSink()));
    expect(doc.media).toHaveLength(1);
    expect((doc.meta.duration_s as number) < 3).toBe(true);
  });
});
