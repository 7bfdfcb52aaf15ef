import { describe, expect, it } from 'vitest';
import { countMediaChunkTokens } from './media-token-count.ts';

describe('countMediaChunkTokens', () => {
  it('measures each media chunk up to the next chunk', () => {
    // Measured with the tiny Gemma 4: text 40, image 266, text 4, audio 73, text 12.
    expect(countMediaChunkTokens(395, [0, 40, 306, 310, 383], [40, 310])).toEqual([266, 73]);
  });

  it('ends a trailing media chunk at the total', () => {
    expect(countMediaChunkTokens(100, [0, 10], [10])).toEqual([90]);
  });

  it('returns nothing without media', () => {
    expect(countMediaChunkTokens(38, [0], [])).toEqual([]);
  });

  it('handles media chunks that follow each other', () => {
    expect(countMediaChunkTokens(50, [0, 5, 25, 45], [5, 25])).toEqual([20, 20]);
  });
});
