import { describe, expect, it } from 'vitest';
import { inferenceFailure, mediaLoadFailure } from './host-failure.ts';

describe('mediaLoadFailure', () => {
  it('maps the binding messages seen in real runs to stable codes', () => {
    expect(
      mediaLoadFailure(new Error('File does not exist or cannot be opened'), { kind: 'image', index: 0 }).code,
    ).toBe('GB_ERR_FILE_NOT_FOUND');
    expect(mediaLoadFailure(new Error('Failed to load media'), { kind: 'image', index: 1 })).toEqual({
      code: 'GB_ERR_IMAGE_INVALID',
      message: 'media 2 (image): llama.cpp could not decode the image',
      details: { index: 1, kind: 'image' },
    });
    expect(mediaLoadFailure(new Error('Failed to load media'), { kind: 'audio', index: 0 }).code).toBe(
      'GB_ERR_AUDIO_INVALID',
    );
    expect(mediaLoadFailure(new Error('Failed to load media'), undefined).code).toBe('GB_ERR_UNSUPPORTED_MEDIA');
  });

  it('keeps unknown errors as retryable-by-default inference failures with one short line', () => {
    const failure = mediaLoadFailure(new Error(`something else\n${'x'.repeat(1000)}`), undefined);
    expect(failure.code).toBe('GB_ERR_INFERENCE');
    expect(failure.message).toBe('tokenizing the prompt with its media failed: something else');
  });
});

describe('inferenceFailure', () => {
  it('cuts long messages', () => {
    expect(inferenceFailure('x', 'a'.repeat(500)).message.length).toBeLessThanOrEqual(303);
  });
});
