/**
 * Tokens each media chunk takes, from what `tokenize(text, { media_paths })` returns: `chunkPos`
 * holds the first token position of every chunk (text and media, in order), `chunkPosMedia` the
 * first position of each media chunk. A chunk ends where the next one starts, the last one at
 * `totalTokens`. Returns one count per media chunk, in order.
 */
export function countMediaChunkTokens(
  totalTokens: number,
  chunkPos: readonly number[],
  chunkPosMedia: readonly number[],
): number[] {
  const starts = [...new Set(chunkPos)].sort((a, b) => a - b);
  return chunkPosMedia.map((mediaStart) => {
    const next = starts.find((start) => start > mediaStart);
    return (next ?? totalTokens) - mediaStart;
  });
}
