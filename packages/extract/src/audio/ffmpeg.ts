import { PassThrough } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { GembatchError } from '@gembatch/contracts';
import { cancelledError } from '../util/abort.ts';
import { runProcess } from '../util/run-process.ts';
import { findSystemTool } from '../util/system-tools.ts';

/**
 * The only module that runs ffmpeg or ffprobe. fluent-ffmpeg (archived upstream) drives the
 * decode; ffprobe runs with a JSON writer through `runProcess` so it has a time limit and a kill.
 * Inputs are always file paths, never stdin: MP4/M4A files with the index (moov) at the end
 * decode to nothing through a pipe. stderr is read to classify failures and never logged: it
 * echoes tags (titles, names) from the file.
 */

/** Decoded audio format: what Gemma's audio projector takes. */
export const PCM_SAMPLE_RATE = 16_000;

/** One audio stream as ffprobe describes it. */
interface ProbedAudioStream {
  codec: string;
  sampleRate: number | undefined;
  channels: number | undefined;
  durationS: number | undefined;
}

/** What ffprobe found in a media file (content-free). */
export interface MediaProbe {
  /** Container name(s), e.g. `mov,mp4,m4a,3gp,3g2,mj2`. */
  formatName: string;
  /** Declared duration of the whole file, when known. */
  durationS: number | undefined;
  audioStreams: ProbedAudioStream[];
  videoStreams: number;
}

/** Options shared by `probeMedia` and `decodeAudio`. */
export interface FfmpegRunOptions {
  /** Kill the tool after this many milliseconds (`GB_ERR_TIMEOUT`). */
  timeoutMs: number;
  /** Kill the tool when this fires (`GB_ERR_CANCELLED`). Defaults to none. */
  signal?: AbortSignal;
}

function requireTool(name: 'ffmpeg' | 'ffprobe'): string {
  const path = findSystemTool(name);
  if (!path) throw new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', `${name} is not installed on this node; audio and video need it`);
  return path;
}

interface FfprobeJson {
  format?: { format_name?: string; duration?: string };
  streams?: Array<{ codec_type?: string; codec_name?: string; sample_rate?: string; channels?: number; duration?: string }>;
}

function toSeconds(value: string | undefined): number | undefined {
  const seconds = value === undefined ? Number.NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** Reads a media file's streams and duration. Files ffprobe cannot open fail with `GB_ERR_AUDIO_INVALID`. */
export async function probeMedia(path: string, options: FfmpegRunOptions): Promise<MediaProbe> {
  const ffprobe = requireTool('ffprobe');
  const result = await runProcess(ffprobe, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path], {
    timeoutMs: options.timeoutMs,
    // Why 16 MiB: stream and format tables are kilobytes even for files with hundreds of streams.
    maxStdoutBytes: 16 * 1024 * 1024,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.exitCode !== 0 || result.overflowed) {
    throw new GembatchError('GB_ERR_AUDIO_INVALID', `the file is not a readable audio or video container (${describeFfmpegFailure(result.stderrTail)})`);
  }
  let parsed: FfprobeJson;
  try {
    parsed = JSON.parse(result.stdout.toString('utf8')) as FfprobeJson;
  } catch (error) {
    throw new GembatchError('GB_ERR_AUDIO_INVALID', 'ffprobe returned unreadable output', { cause: error });
  }
  const streams = parsed.streams ?? [];
  return {
    formatName: parsed.format?.format_name ?? 'unknown',
    durationS: toSeconds(parsed.format?.duration),
    audioStreams: streams
      .filter((stream) => stream.codec_type === 'audio')
      .map((stream) => ({
        codec: stream.codec_name ?? 'unknown',
        sampleRate: stream.sample_rate === undefined ? undefined : Number(stream.sample_rate),
        channels: stream.channels,
        durationS: toSeconds(stream.duration),
      })),
    videoStreams: streams.filter((stream) => stream.codec_type === 'video').length,
  };
}

/** Options of `decodeAudio`. */
export interface DecodeAudioOptions extends FfmpegRunOptions {
  /** Stop decoding after this many seconds of audio. */
  maxSeconds: number;
}

/**
 * Decodes the first audio stream of a file (any container and codec ffmpeg reads, including the
 * audio track of a video) to 16 kHz mono signed 16-bit PCM, yielded in chunks as ffmpeg produces
 * them so memory stays flat. Stopping the iteration early kills ffmpeg. Failures: no audio stream
 * → `GB_ERR_AUDIO_NO_STREAM`; undecodable data → `GB_ERR_AUDIO_INVALID`.
 */
export async function* decodeAudio(path: string, options: DecodeAudioOptions): AsyncGenerator<Buffer> {
  const ffmpegPath = requireTool('ffmpeg');
  const output = new PassThrough();
  let stderrTail = '';
  let stopped = false;
  let failure: GembatchError | undefined;
  let settle: (() => void) | undefined;
  const finished = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const command = ffmpeg(path)
    .setFfmpegPath(ffmpegPath)
    .inputOptions(['-nostdin', '-hide_banner'])
    .noVideo()
    .outputOptions(['-map', '0:a:0', '-sn', '-dn', '-t', String(options.maxSeconds)])
    .audioChannels(1)
    .audioFrequency(PCM_SAMPLE_RATE)
    .audioCodec('pcm_s16le')
    .format('s16le')
    .on('stderr', (line: string) => {
      // Why 4 KiB: the last lines hold the error; the rest is progress noise.
      stderrTail = (stderrTail + '\n' + line).slice(-4096);
    })
    .on('error', () => {
      if (!stopped && !failure) failure = classifyDecodeFailure(stderrTail);
      output.end();
      settle?.();
    })
    .on('end', () => {
      settle?.();
    });
  const stop = (reason: GembatchError | undefined) => {
    if (!failure && reason) failure = reason;
    stopped = true;
    command.kill('SIGKILL');
  };
  const timer = setTimeout(() => stop(new GembatchError('GB_ERR_TIMEOUT', `decoding the audio took longer than ${options.timeoutMs} ms`)), options.timeoutMs);
  const onAbort = () => stop(cancelledError());
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  command.pipe(output, { end: true });
  try {
    for await (const chunk of output) {
      if (failure) break;
      yield chunk as Buffer;
    }
    await finished;
    if (failure) throw failure;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    if (!stopped) {
      stopped = true;
      command.kill('SIGKILL');
    }
  }
}

function classifyDecodeFailure(stderrTail: string): GembatchError {
  if (/matches no streams|does not contain any stream/i.test(stderrTail)) return new GembatchError('GB_ERR_AUDIO_NO_STREAM', 'the file has no audio stream');
  return new GembatchError('GB_ERR_AUDIO_INVALID', `ffmpeg could not decode the audio (${describeFfmpegFailure(stderrTail)})`);
}

/** A content-free reason for an ffmpeg/ffprobe failure: only known error phrases, never raw stderr. */
function describeFfmpegFailure(stderrTail: string): string {
  const known: ReadonlyArray<[RegExp, string]> = [
    [/Invalid data found when processing input/i, 'invalid data'],
    [/moov atom not found/i, 'truncated MP4/M4A: no moov atom'],
    [/No such file or directory/i, 'file not found'],
    [/Invalid argument/i, 'empty or unreadable file'],
    [/Decoder \(codec [^)]*\) not found|Unknown decoder/i, 'unsupported codec'],
    [/Permission denied/i, 'permission denied'],
    [/End of file/i, 'unexpected end of file'],
  ];
  return known.find(([pattern]) => pattern.test(stderrTail))?.[1] ?? 'unrecognised error';
}
