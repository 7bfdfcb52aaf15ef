import type { HostFailure } from './host-protocol.ts';
import { errorMessage } from '@gembatch/contracts';

/**
 * Turns an error the binding raised while loading media into a failure with a stable code.
 * Messages from llama.cpp/mtmd (`File does not exist or cannot be opened`, `Failed to load
 * media`) name no content, but they are replaced by our own wording anyway.
 */
export function mediaLoadFailure(
  error: unknown,
  media: { kind: 'image' | 'audio'; index: number } | undefined,
): HostFailure {
  const message = errorMessage(error);
  const label = media ? `media ${media.index + 1} (${media.kind})` : 'a media file';
  const details = media ? { index: media.index, kind: media.kind } : {};
  if (/does not exist|cannot be opened/i.test(message))
    return { code: 'GB_ERR_FILE_NOT_FOUND', message: `${label}: the file cannot be opened`, details };
  if (/failed to load media|failed to decode|invalid/i.test(message)) {
    if (media?.kind === 'audio')
      return { code: 'GB_ERR_AUDIO_INVALID', message: `${label}: llama.cpp could not decode the audio`, details };
    if (media?.kind === 'image')
      return { code: 'GB_ERR_IMAGE_INVALID', message: `${label}: llama.cpp could not decode the image`, details };
    return { code: 'GB_ERR_UNSUPPORTED_MEDIA', message: `${label} could not be decoded by llama.cpp`, details };
  }
  return {
    code: 'GB_ERR_INFERENCE',
    message: `tokenizing the prompt with its media failed: ${firstLine(message)}`,
    details,
  };
}

/** Any other error from the binding, as an inference failure carrying only its first line. */
export function inferenceFailure(what: string, error: unknown): HostFailure {
  const message = errorMessage(error);
  return { code: 'GB_ERR_INFERENCE', message: `${what}: ${firstLine(message)}` };
}

/** llama.cpp messages can be long (grammars, templates); the first line is the useful part. */
function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').slice(0, 300);
}
