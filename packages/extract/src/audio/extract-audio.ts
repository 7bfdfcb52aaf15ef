import { GembatchError, type ExtractedDocument, type MediaPart } from '@gembatch/contracts';
import { throwIfAborted } from '../util/abort.ts';
import { decodeAudio, PCM_SAMPLE_RATE, probeMedia } from './ffmpeg.ts';
import { PcmSegmenter, type PcmSegment } from './pcm-segmenter.ts';
import { pcm16MonoToWav } from './wav-file.ts';

/** Inputs of `extractAudio`. */
export interface ExtractAudioInput {
  path: string;
  /** Sniffed MIME type (audio/* or video/*). */
  mime: string;
  maxSeconds: number;
  segmentSeconds: number;
  putBlob(bytes: Buffer, mime: string): Promise<string>;
  signal?: AbortSignal;
}

// Why 30 s: ffprobe only reads headers; a file that needs longer is hostile or on a dead disk.
const PROBE_TIMEOUT_MS = 30_000;
// Why 2 s: a pause between words or sentences almost always falls inside the last two seconds.
const CUT_SEARCH_SECONDS = 2;
// Why 0.9: codecs pad and containers round; a tenth missing means the file was cut off.
const TRUNCATION_RATIO = 0.9;

/**
 * Probes a media file, then decodes its first audio stream to 16 kHz mono and stores it as WAV
 * segments of at most `segmentSeconds` (cut in pauses), one `audio` media part each. Video files
 * give their audio track. Fails with `GB_ERR_AUDIO_NO_STREAM`, `GB_ERR_AUDIO_TOO_LONG`,
 * `GB_ERR_AUDIO_EMPTY` (zero samples) or `GB_ERR_AUDIO_INVALID`.
 */
export async function extractAudio(input: ExtractAudioInput): Promise<ExtractedDocument> {
  const probe = await probeMedia(input.path, {
    mime: input.mime,
    timeoutMs: PROBE_TIMEOUT_MS,
    ...(input.signal ? { signal: input.signal } : {}),
  });
  const stream = probe.audioStreams[0];
  if (!stream) {
    throw new GembatchError(
      'GB_ERR_AUDIO_NO_STREAM',
      `the ${probe.videoStreams > 0 ? 'video' : 'file'} has no audio stream`,
      { details: { videoStreams: probe.videoStreams } },
    );
  }
  const declaredS = stream.durationS ?? probe.durationS;
  if (declaredS !== undefined && declaredS > input.maxSeconds) {
    throw new GembatchError(
      'GB_ERR_AUDIO_TOO_LONG',
      `the audio lasts ${declaredS.toFixed(1)} s, above the limit of ${input.maxSeconds} s`,
      {
        details: { durationS: declaredS, maxSeconds: input.maxSeconds },
      },
    );
  }
  const maxSamples = Math.round(input.maxSeconds * PCM_SAMPLE_RATE);
  const segmenter = new PcmSegmenter({
    maxSamples: Math.round(input.segmentSeconds * PCM_SAMPLE_RATE),
    searchSamples: Math.round(Math.min(CUT_SEARCH_SECONDS, input.segmentSeconds / 4) * PCM_SAMPLE_RATE),
  });
  const media: MediaPart[] = [];
  const store = async (segments: PcmSegment[]) => {
    for (const segment of segments) {
      throwIfAborted(input.signal);
      const sha256 = await input.putBlob(pcm16MonoToWav(segment.pcm, PCM_SAMPLE_RATE), 'audio/wav');
      media.push({
        kind: 'audio',
        sha256,
        mime: 'audio/wav',
        start_s: segment.startSample / PCM_SAMPLE_RATE,
        end_s: segment.endSample / PCM_SAMPLE_RATE,
      });
    }
  };
  // One extra second lets an undeclared over-long stream show itself instead of being silently cut at the cap.
  const decodeCapS = input.maxSeconds + 1;
  const chunks = decodeAudio(input.path, {
    mime: input.mime,
    maxSeconds: decodeCapS,
    // Why 30 s + 0.5 × length: ffmpeg decodes well above 50× real time on one core; this allows 25× slack.
    timeoutMs: 30_000 + decodeCapS * 500,
    ...(input.signal ? { signal: input.signal } : {}),
  });
  for await (const chunk of chunks) {
    await store(segmenter.push(chunk));
    if (segmenter.totalSamples > maxSamples) {
      await chunks.return(undefined);
      throw new GembatchError(
        'GB_ERR_AUDIO_TOO_LONG',
        `the audio lasts longer than the limit of ${input.maxSeconds} s`,
        { details: { maxSeconds: input.maxSeconds } },
      );
    }
  }
  await store(segmenter.finish());
  const decodedS = segmenter.totalSamples / PCM_SAMPLE_RATE;
  if (segmenter.totalSamples === 0) throw new GembatchError('GB_ERR_AUDIO_EMPTY', 'the audio decodes to zero samples');
  const warnings: string[] = [];
  if (declaredS !== undefined && decodedS < declaredS * TRUNCATION_RATIO) {
    warnings.push(`decoded ${decodedS.toFixed(1)} s of a declared ${declaredS.toFixed(1)} s: the file looks truncated`);
  }
  if (probe.audioStreams.length > 1)
    warnings.push(`the file has ${probe.audioStreams.length} audio streams; only the first was used`);
  return {
    media_type: input.mime,
    text: '',
    pages: [],
    media,
    kinds: ['audio'],
    meta: {
      duration_s: decodedS,
      declared_duration_s: declaredS ?? null,
      container: probe.formatName,
      codec: stream.codec,
      source_sample_rate: stream.sampleRate ?? null,
      source_channels: stream.channels ?? null,
      video_streams: probe.videoStreams,
      segments: media.length,
      sample_rate: PCM_SAMPLE_RATE,
    },
    warnings,
  };
}
