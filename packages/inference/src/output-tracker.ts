import type { ThoughtMarkers } from './prompt-format.ts';

/** One token's text with special tokens written out, given the tokens before it. */
export type TokenPiece = (token: number, previous: readonly number[]) => string;

interface ThoughtRegion {
  /** Where the prefix marker starts and the content starts. */
  start: number;
  contentStart: number;
  /** Where the suffix marker starts and ends (unset while the thought is open). */
  contentEnd?: number;
  end?: number;
}

/** Tokens of context handed to the detokenizer so leading spaces come out right. */
const PIECE_CONTEXT_TOKENS = 4;

/**
 * Follows generated tokens as text: ends generation at the first stop trigger outside a thought,
 * knows whether the model is inside a thought (structured output waits for it to close), and at
 * the end separates the answer from the thoughts at token level (markers and stop text dropped).
 */
export class OutputTracker {
  readonly tokens: number[] = [];
  readonly #offsets: number[] = [];
  readonly #triggers: readonly string[];
  readonly #thought: ThoughtMarkers | undefined;
  readonly #regions: ThoughtRegion[] = [];
  readonly #piece: TokenPiece;
  readonly #longestMarker: number;
  #text = '';
  #scanFrom = 0;
  #stopAt: number | undefined;

  constructor(
    options: { stopTriggers: readonly string[]; thought: ThoughtMarkers | undefined; startsInThought: boolean },
    piece: TokenPiece,
  ) {
    this.#triggers = options.stopTriggers.filter((t) => t !== '');
    this.#thought = options.thought;
    this.#piece = piece;
    this.#longestMarker = Math.max(
      1,
      ...this.#triggers.map((t) => t.length),
      options.thought?.prefix.length ?? 0,
      options.thought?.suffix.length ?? 0,
    );
    if (options.startsInThought && options.thought) this.#regions.push({ start: 0, contentStart: 0 });
  }

  /** Whether the model is inside a thought right now. */
  get inThought(): boolean {
    const last = this.#regions.at(-1);
    return last !== undefined && last.end === undefined;
  }

  /** Whether a stop trigger ended the answer. */
  get stopped(): boolean {
    return this.#stopAt !== undefined;
  }

  /** Adds a generated token; returns `true` when a stop trigger has appeared (generation should end). */
  push(token: number): boolean {
    const piece = this.#piece(token, this.tokens.slice(-PIECE_CONTEXT_TOKENS));
    this.tokens.push(token);
    this.#offsets.push(this.#text.length);
    this.#text += piece;
    this.#scan(Math.max(this.#scanFrom, this.#text.length - piece.length - this.#longestMarker + 1));
    return this.stopped;
  }

  #scan(from: number): void {
    let cursor = from;
    while (this.#stopAt === undefined) {
      const open = this.#regions.at(-1);
      if (open && open.end === undefined) {
        const at = this.#thought ? this.#text.indexOf(this.#thought.suffix, Math.max(cursor, open.contentStart)) : -1;
        if (at < 0) return;
        open.contentEnd = at;
        open.end = at + (this.#thought?.suffix.length ?? 0);
        cursor = this.#scanFrom = open.end;
        continue;
      }
      let next = -1;
      let kind: 'stop' | 'thought' = 'stop';
      for (const trigger of this.#triggers) {
        const at = this.#text.indexOf(trigger, cursor);
        if (at >= 0 && (next < 0 || at < next)) next = at;
      }
      if (this.#thought) {
        const at = this.#text.indexOf(this.#thought.prefix, cursor);
        if (at >= 0 && (next < 0 || at < next)) {
          next = at;
          kind = 'thought';
        }
      }
      if (next < 0) return;
      if (kind === 'stop') {
        this.#stopAt = next;
        return;
      }
      const contentStart = next + (this.#thought?.prefix.length ?? 0);
      this.#regions.push({ start: next, contentStart });
      cursor = this.#scanFrom = contentStart;
    }
  }

  /** The answer and the thoughts as plain text (special tokens left out), trimmed. */
  result(plainText: (tokens: number[]) => string): { text: string; thoughts: string } {
    const answer: number[] = [];
    const thoughts: number[] = [];
    this.tokens.forEach((token, index) => {
      const offset = this.#offsets[index] as number;
      if (this.#stopAt !== undefined && offset >= this.#stopAt) return;
      const region = this.#regions.find((r) => offset >= r.start && (r.end === undefined || offset < r.end));
      if (!region) answer.push(token);
      else if (offset >= region.contentStart && (region.contentEnd === undefined || offset < region.contentEnd))
        thoughts.push(token);
    });
    return { text: plainText(answer).trim(), thoughts: plainText(thoughts).trim() };
  }
}
