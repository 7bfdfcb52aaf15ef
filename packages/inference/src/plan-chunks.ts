import { GembatchError } from '@gembatch/contracts';

export interface PlanChunksOptions {
  /** Most tokens in one chunk. */
  maxTokens: number;
  /** Tokens each chunk repeats from the end of the previous one, so nothing is cut without context. Defaults to `0`. */
  overlapTokens?: number;
  /**
   * How good a cut right after token `index` is: `0` none, higher better (a line end beats a
   * sentence end). Cuts move back to the best one within `snapTokens`. Defaults to no preference.
   */
  cutPreference?: (index: number) => number;
  /** How far back from the even split a cut may move to reach a preferred one. Defaults to a tenth of `maxTokens`. */
  snapTokens?: number;
}

/** A token range `[start, end)` of the input; chunks come in input order. */
export interface TokenChunk {
  index: number;
  count: number;
  start: number;
  end: number;
  tokens: number[];
}

/** A chunk of a text input: its text and where it lies in the text's tokens. */
export interface TextChunk {
  index: number;
  count: number;
  /** First token (inclusive) and last (exclusive) in the tokenized input. */
  start: number;
  end: number;
  text: string;
  /** Tokens the chunk's text takes (never more than `maxTokens`). */
  tokenCount: number;
}

/** What text chunking needs from an engine. */
export interface ChunkTokenizer {
  tokenize?(text: string): Promise<number[]>;
  detokenize?(tokens: readonly number[]): Promise<string>;
}

/** Share of `maxTokens` a cut may move back to land on a line or sentence end. */
const DEFAULT_SNAP_SHARE = 0.1;

function validate(options: PlanChunksOptions): { max: number; overlap: number } {
  const max = Math.floor(options.maxTokens);
  const overlap = Math.floor(options.overlapTokens ?? 0);
  if (!(max >= 1) || !(overlap >= 0) || overlap >= max) {
    throw new GembatchError(
      'GB_ERR_CONTEXT_OVERFLOW',
      `cannot split into chunks of ${options.maxTokens} tokens with ${options.overlapTokens ?? 0} tokens of overlap: a chunk must hold more than its overlap`,
      {
        details: { maxTokens: options.maxTokens, overlapTokens: options.overlapTokens ?? 0 },
      },
    );
  }
  return { max, overlap };
}

/** The `[start, end)` ranges, evenly sized, cut at preferred points where one is near. */
function planRanges(length: number, options: PlanChunksOptions): Array<[number, number]> {
  const { max, overlap } = validate(options);
  if (length <= max) return [[0, length]];
  const snap = Math.max(0, Math.floor(options.snapTokens ?? max * DEFAULT_SNAP_SHARE));
  const ranges: Array<[number, number]> = [];
  let start = 0;
  while (length - start > max) {
    const rest = length - start;
    // Fewest chunks that cover the rest, then the even length that uses them.
    const chunksLeft = Math.ceil((rest - overlap) / (max - overlap));
    const even = Math.min(max, Math.ceil((rest + (chunksLeft - 1) * overlap) / chunksLeft));
    let end = start + even;
    // Never cut inside a character (a negative preference), even at the hard limit.
    while (options.cutPreference && options.cutPreference(end - 1) < 0 && end - 1 > start + overlap) end--;
    if (options.cutPreference && snap > 0) {
      let best = 0;
      // The cut must leave new content for the next chunk: end - overlap > start.
      for (let candidate = end; candidate > Math.max(start + overlap + 1, end - snap) - 1; candidate--) {
        const score = options.cutPreference(candidate - 1);
        if (score > best) {
          best = score;
          end = candidate;
        }
      }
    }
    ranges.push([start, end]);
    start = end - overlap;
  }
  ranges.push([start, length]);
  return ranges;
}

/**
 * Splits an input into token-sized chunks with overlap, in order, deterministically: the same
 * input and options always give the same chunks, every token is in at least one chunk, and
 * consecutive chunks share exactly `overlapTokens` tokens (the last chunk may be shorter).
 *
 * Given token ids it is pure and returns token ranges. Given text it needs an engine's
 * tokenizer: it cuts preferably at line ends, then sentence ends, and resolves to the chunks'
 * texts, each re-checked to take at most `maxTokens` tokens.
 */
export function planChunks(tokens: readonly number[], options: PlanChunksOptions): TokenChunk[];
export function planChunks(
  text: string,
  options: Omit<PlanChunksOptions, 'cutPreference'> & { engine: ChunkTokenizer },
): Promise<TextChunk[]>;
export function planChunks(
  input: readonly number[] | string,
  options: PlanChunksOptions & { engine?: ChunkTokenizer },
): TokenChunk[] | Promise<TextChunk[]> {
  if (typeof input === 'string') return planTextChunks(input, options);
  const ranges = planRanges(input.length, options);
  return ranges.map(([start, end], index) => ({
    index,
    count: ranges.length,
    start,
    end,
    tokens: input.slice(start, end),
  }));
}

/** Line ends are the best cuts, then sentence ends. */
function cutScore(piece: string): number {
  if (piece.includes('\n')) return 2;
  return /[.!?;:]["')\]]?\s*$/.test(piece) ? 1 : 0;
}

/**
 * Why 16 Ki characters: tokenizing is synchronous native work at ~1 µs a character, so one slice
 * holds the event loop ~16 ms (a few times that on a busy machine); a whole megabyte in one call
 * held it for a second.
 */
export const TOKENIZE_SLICE_CHARS = 16 * 1024;

/**
 * `text` cut into pieces of at most `sliceChars` characters, each ending after a space or line
 * break where one lies in its second half (never inside a surrogate pair), so that tokenizing the
 * pieces one by one gives (nearly) the tokens of the whole.
 */
export function sliceText(text: string, sliceChars = TOKENIZE_SLICE_CHARS): string[] {
  const slices: string[] = [];
  let start = 0;
  while (text.length - start > sliceChars) {
    let end = start + sliceChars;
    // Searched in the second half only: a text without blanks must not be rescanned from its start.
    const half = start + Math.floor(sliceChars / 2);
    const tail = text.slice(half, end);
    const blank = Math.max(tail.lastIndexOf(' '), tail.lastIndexOf('\n'));
    if (blank >= 0) end = half + blank + 1;
    else if (/[\uD800-\uDBFF]/.test(text[end - 1] ?? '')) end--;
    slices.push(text.slice(start, end));
    start = end;
  }
  slices.push(text.slice(start));
  return slices;
}

/** Tokens of `text`, tokenized slice by slice with a turn of the event loop between slices. */
export async function tokenizeInTurns(
  engine: Required<Pick<ChunkTokenizer, 'tokenize'>>,
  text: string,
): Promise<number[]> {
  const slices = sliceText(text);
  if (slices.length === 1) return engine.tokenize(text);
  const tokens: number[] = [];
  for (const slice of slices) {
    for (const token of await engine.tokenize(slice)) tokens.push(token);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return tokens;
}

/** Why 4096: detokenizing one token costs ~5 µs, so the loop waits ~20 ms at most between turns. */
const YIELD_EVERY_TOKENS = 4096;

/** Tokens kept free in each text chunk for edge effects of re-tokenization. */
const EDGE_SLACK_TOKENS = 2;

/** Pieces that are part of a multi-byte character render as U+FFFD alone: never cut after them. */
const PARTIAL_CHARACTER = '\uFFFD';

async function planTextChunks(
  text: string,
  options: PlanChunksOptions & { engine?: ChunkTokenizer },
): Promise<TextChunk[]> {
  const { engine } = options;
  if (!engine?.tokenize || !engine.detokenize)
    throw new GembatchError('GB_ERR_INTERNAL', 'this engine cannot tokenize text, so it cannot plan chunks');
  const { max, overlap } = validate(options);
  const tokens = await tokenizeInTurns({ tokenize: (piece) => engine.tokenize?.(piece) ?? Promise.resolve([]) }, text);
  if (tokens.length <= max)
    return [{ index: 0, count: 1, start: 0, end: tokens.length, text, tokenCount: tokens.length }];
  const scores: number[] = [];
  for (const token of tokens) {
    const piece = await engine.detokenize([token]);
    scores.push(piece.includes(PARTIAL_CHARACTER) ? -1 : cutScore(piece));
    // The engine answers from memory, so these awaits never reach the event loop: give it a turn
    // every few thousand tokens (~20 ms here), or a 1 MB input would hold the loop for seconds.
    if (scores.length % YIELD_EVERY_TOKENS === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  // Re-tokenizing a slice can merge differently at its edges; plan a little under the limit and,
  // should a chunk still come out too long, plan again smaller (never dropping tokens).
  let limit = Math.max(overlap + 1, max - EDGE_SLACK_TOKENS);
  for (;;) {
    const ranges = planRanges(tokens.length, {
      ...options,
      maxTokens: limit,
      cutPreference: (index) => scores[index] ?? 0,
    });
    const chunks: TextChunk[] = [];
    let excess = 0;
    for (const [index, [start, end]] of ranges.entries()) {
      // One chunk's detokenize and tokenize at a time, then the event loop's turn (see YIELD_EVERY_TOKENS).
      await new Promise<void>((resolve) => setImmediate(resolve));
      const chunkText = await engine.detokenize(tokens.slice(start, end));
      const tokenCount = (await engine.tokenize(chunkText)).length;
      excess = Math.max(excess, tokenCount - max);
      chunks.push({ index, count: ranges.length, start, end, text: chunkText, tokenCount });
    }
    if (excess <= 0) return chunks;
    const smaller = limit - excess;
    if (smaller <= overlap)
      throw new GembatchError(
        'GB_ERR_CONTEXT_OVERFLOW',
        `the text cannot be cut into chunks of ${max} tokens with ${overlap} tokens of overlap`,
      );
    limit = smaller;
  }
}
