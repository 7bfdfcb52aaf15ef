import { spawn } from 'node:child_process';
import { childProcessEnv } from '@gembatch/config';
import { GembatchError } from '@gembatch/contracts';
import { cancelledError } from '../util/abort.ts';
import { runProcess } from '../util/run-process.ts';
import { findSystemTool } from '../util/system-tools.ts';

/**
 * The only module that runs ffmpeg or ffprobe, both with a minimal environment, a time limit and
 * a kill. Inputs are always file paths, never stdin: MP4/M4A files with the index (moov) at the
 * end decode to nothing through a pipe. Every input is opened with `-protocol_whitelist file,pipe`
 * and only the demuxer of the sniffed type (`-f`), so a file cannot turn itself into a playlist or
 * concat script that makes ffmpeg read other files (another tenant's blob) or URLs. stderr is read
 * to classify failures and never logged: it echoes tags (titles, names) from the file.
 */

/**
 * ffmpeg's demuxer for each audio/video MIME type the sniffer (file-type) reports. A type not
 * listed is refused rather than probed: probing is what lets a hostile file pick its demuxer.
 */
const DEMUXER_BY_MIME: Readonly<Record<string, string>> = {
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'audio/flac': 'flac',
  'audio/aac': 'aac',
  'audio/aiff': 'aiff',
  'audio/amr': 'amr',
  'audio/ape': 'ape',
  'audio/wavpack': 'wv',
  'audio/x-dsf': 'dsf',
  'audio/x-voc': 'voc',
  'audio/vnd.dolby.dd-raw': 'ac3',
  'audio/ogg': 'ogg',
  'audio/ogg; codecs=opus': 'ogg',
  'audio/opus': 'ogg',
  'video/ogg': 'ogg',
  'application/ogg': 'ogg',
  'audio/mp4': 'mov',
  'audio/x-m4a': 'mov',
  'video/mp4': 'mov',
  'video/x-m4v': 'mov',
  'video/quicktime': 'mov',
  'video/3gpp': 'mov',
  'video/3gpp2': 'mov',
  'video/matroska': 'matroska',
  'video/webm': 'matroska',
  'audio/webm': 'matroska',
  'video/vnd.avi': 'avi',
  'audio/x-ms-asf': 'asf',
  'video/x-ms-asf': 'asf',
  'application/vnd.ms-asf': 'asf',
  'video/mpeg': 'mpeg',
  'video/MP1S': 'mpeg',
  'video/MP2P': 'mpeg',
  'video/mp2t': 'mpegts',
  'video/x-flv': 'flv',
  'application/mxf': 'mxf',
};

/** ffmpeg's demuxer for a sniffed MIME type; other types fail with `GB_ERR_UNSUPPORTED_MEDIA`. */
function demuxerFor(mime: string): string {
  const demuxer = DEMUXER_BY_MIME[mime];
  if (!demuxer)
    throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', `unsupported audio/video container: ${mime}`, {
      details: { mime },
    });
  return demuxer;
}

/** Input options that pin the demuxer and forbid every protocol but local files and pipes; then the input itself. */
function guardedInput(path: string, mime: string): string[] {
  // `file:` so a path is never read as another protocol's URL.
  return ['-protocol_whitelist', 'file,pipe', '-f', demuxerFor(mime), '-i', `file:${path}`];
}

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
  /** The sniffed MIME type: it picks the only demuxer ffmpeg may use. */
  mime: string;
  /** Kill the tool after this many milliseconds (`GB_ERR_TIMEOUT`). */
  timeoutMs: number;
  /** Kill the tool when this fires (`GB_ERR_CANCELLED`). Defaults to none. */
  signal?: AbortSignal;
}

function requireTool(name: 'ffmpeg' | 'ffprobe'): string {
  const path = findSystemTool(name);
  if (!path)
    throw new GembatchError(
      'GB_ERR_SERVICE_UNAVAILABLE',
      `${name} is not installed on this node; audio and video need it`,
    );
  return path;
}

interface FfprobeJson {
  format?: { format_name?: string; duration?: string };
  streams?: Array<{
    codec_type?: string;
    codec_name?: string;
    sample_rate?: string;
    channels?: number;
    duration?: string;
  }>;
}

function toSeconds(value: string | undefined): number | undefined {
  const seconds = value === undefined ? Number.NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** Reads a media file's streams and duration. Files ffprobe cannot open fail with `GB_ERR_AUDIO_INVALID`. */
export async function probeMedia(path: string, options: FfmpegRunOptions): Promise<MediaProbe> {
  const ffprobe = requireTool('ffprobe');
  const input = guardedInput(path, options.mime);
  const result = await runProcess(
    ffprobe,
    ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', ...input],
    {
      timeoutMs: options.timeoutMs,
      // Why 16 MiB: stream and format tables are kilobytes even for files with hundreds of streams.
      maxStdoutBytes: 16 * 1024 * 1024,
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
  if (result.exitCode !== 0 || result.overflowed) {
    throw new GembatchError(
      'GB_ERR_AUDIO_INVALID',
      `the file is not a readable audio or video container (${describeFfmpegFailure(result.stderrTail)})`,
    );
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
  const input = guardedInput(path, options.mime);
  const args = [
    '-nostdin',
    '-hide_banner',
    ...input,
    '-vn',
    '-map',
    '0:a:0',
    '-sn',
    '-dn',
    '-t',
    String(options.maxSeconds),
    '-ac',
    '1',
    '-ar',
    String(PCM_SAMPLE_RATE),
    '-acodec',
    'pcm_s16le',
    '-f',
    's16le',
    'pipe:1',
  ];
  if (options.signal?.aborted) throw cancelledError();
  const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childProcessEnv() });
  let stderrTail = '';
  let failure: GembatchError | undefined;
  let spawnError: Error | undefined;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    // Why 4 KiB: the last lines hold the error; the rest is progress noise.
    stderrTail = (stderrTail + chunk).slice(-4096);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      resolve(null);
    });
    child.once('close', (code) => resolve(code));
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const stop = (reason: GembatchError) => {
    failure ??= reason;
    kill();
  };
  const timer = setTimeout(
    () => stop(new GembatchError('GB_ERR_TIMEOUT', `decoding the audio took longer than ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  const onAbort = () => stop(cancelledError());
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of child.stdout) {
      if (failure) break;
      yield chunk as Buffer;
    }
    const code = await exited;
    if (failure) throw failure;
    if (spawnError)
      throw new GembatchError('GB_ERR_INTERNAL', `could not run ffmpeg: ${spawnError.message}`, { cause: spawnError });
    if (code !== 0) throw classifyDecodeFailure(stderrTail);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    kill();
  }
}

function classifyDecodeFailure(stderrTail: string): GembatchError {
  if (/matches no streams|does not contain any stream/i.test(stderrTail))
    return new GembatchError('GB_ERR_AUDIO_NO_STREAM', 'the file has no audio stream');
  return new GembatchError(
    'GB_ERR_AUDIO_INVALID',
    `ffmpeg could not decode the audio (${describeFfmpegFailure(stderrTail)})`,
  );
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
