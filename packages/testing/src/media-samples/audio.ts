import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { littleEndianRecord } from '../byte-record.ts';
import { runTool } from './run-tool.ts';

/** Audio containers `writeSpeech` can produce. `m4a` keeps ffmpeg's default layout: the moov index at the end. */
export type SpeechFormat = 'wav' | 'mp3' | 'flac' | 'opus' | 'm4a' | 'ogg';

const SPEECH_ENCODERS: Record<SpeechFormat, string[]> = {
  wav: ['-c:a', 'pcm_s16le'],
  mp3: ['-c:a', 'libmp3lame', '-b:a', '64k'],
  flac: ['-c:a', 'flac'],
  opus: ['-c:a', 'libopus', '-b:a', '32k'],
  m4a: ['-c:a', 'aac', '-b:a', '64k'],
  ogg: ['-c:a', 'libvorbis', '-q:a', '3'],
};

/** Default sentence of `writeSpeech`. */
export const SAMPLE_SPEECH = 'The patient reports mild pain in the left knee since Tuesday.';

/**
 * Speaks `text` with espeak-ng (22.05 kHz WAV), then converts it with ffmpeg into each requested
 * container; returns the path of each file by format.
 */
export async function writeSpeech(
  dir: string,
  formats: readonly SpeechFormat[],
  text = SAMPLE_SPEECH,
): Promise<Record<SpeechFormat, string>> {
  const source = join(dir, 'speech-espeak.wav');
  await runTool('espeak-ng', ['-v', 'en-us', '-s', '160', '-w', source, text]);
  const out = {} as Record<SpeechFormat, string>;
  for (const format of formats) {
    const target = join(dir, `speech.${format}`);
    await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', source, ...SPEECH_ENCODERS[format], target]);
    out[format] = target;
  }
  return out;
}

/** Writes `seconds` of a 440 Hz tone as a 44.1 kHz stereo WAV (long audio for segmenting and caps). */
export async function writeToneWav(path: string, seconds: number): Promise<string> {
  await runTool('ffmpeg', [
    '-nostdin',
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=440:sample_rate=44100:duration=${seconds}`,
    '-ac',
    '2',
    path,
  ]);
  return path;
}

/** Writes a WAV file with a valid header and no samples. */
export async function writeEmptyWav(path: string): Promise<string> {
  // The 44-byte canonical header: RIFF chunk, 16-byte PCM fmt chunk (mono, 16 kHz, 16-bit), empty data chunk.
  const header = littleEndianRecord(44, [
    [0, 4, 'RIFF'],
    [4, 4, 36],
    [8, 4, 'WAVE'],
    [12, 4, 'fmt '],
    [16, 4, 16],
    [20, 2, 1],
    [22, 2, 1],
    [24, 4, 16000],
    [28, 4, 32000],
    [32, 2, 2],
    [34, 2, 16],
    [36, 4, 'data'],
    [40, 4, 0],
  ]);
  await writeFile(path, header);
  return path;
}

/** Options of `writeVideo`. */
export interface VideoOptions {
  /** Audio track to mux in (a file path), or none for a silent video. */
  audioFrom?: string;
  /** Video length in seconds when there is no audio. Defaults to `2`. */
  seconds?: number;
}

/** Writes a small H.264 MP4 test pattern, with the given audio as an AAC track (video cut to its length) or without any audio stream. */
export async function writeVideo(path: string, options: VideoOptions = {}): Promise<string> {
  // With audio, the pattern runs long and `-shortest` trims it to the audio's length.
  const seconds = options.audioFrom ? 600 : (options.seconds ?? 2);
  const inputs = [
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=320x240:rate=10:duration=${seconds}`,
    ...(options.audioFrom ? ['-i', options.audioFrom] : []),
  ];
  const audio = options.audioFrom ? ['-c:a', 'aac', '-shortest'] : ['-an'];
  await runTool('ffmpeg', [
    '-nostdin',
    '-v',
    'error',
    '-y',
    ...inputs,
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    ...audio,
    path,
  ]);
  return path;
}
