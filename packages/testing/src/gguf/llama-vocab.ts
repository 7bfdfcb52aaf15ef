import { GembatchError } from '@gembatch/contracts';
import { TOKEN_TYPE } from './ggml-types.ts';
import { ENGLISH_SUFFIXES, ENGLISH_WORDS } from './english-words.ts';

/** SentencePiece's word-boundary marker, which llama.cpp's SPM tokenizer puts in place of spaces. */
export const SPM_SPACE = '\u2581';

/** A SentencePiece-style (`tokenizer.ggml.model = llama`) vocabulary, as GGUF stores it. */
export interface LlamaVocab {
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
  unknownId: number;
  bosId: number;
  eosId: number;
}

export interface LlamaVocabOptions {
  /** Number of tokens; at least the fixed part (3 specials, 256 bytes, control tokens, ASCII). */
  size: number;
  /** Control tokens added after the byte tokens (e.g. `<start_of_turn>`). Defaults to none. */
  controlTokens?: readonly string[];
}

/**
 * Builds a vocabulary llama.cpp's SPM tokenizer handles well:
 * `<unk>`=0, `<s>`=1, `</s>`=2, byte tokens `<0x00>`..`<0xFF>` (type BYTE, so any text
 * round-trips through byte fallback), the control tokens asked for, `▁` and printable ASCII,
 * then every prefix of common suffixes and of `▁word` for frequent English words until the
 * size is reached. SPM merges adjacent pieces only into pieces in the vocabulary, so having each
 * prefix gives every listed word a merge path down to one token. Scores fall with rank, as in
 * SentencePiece. If the words run out, `<unusedN>` tokens (type UNUSED) fill the rest.
 */
export function buildLlamaVocab(options: LlamaVocabOptions): LlamaVocab {
  const tokens: string[] = [];
  const types: number[] = [];
  const seen = new Set<string>();
  const add = (token: string, type: number): void => {
    if (seen.has(token) || tokens.length >= options.size) return;
    seen.add(token);
    tokens.push(token);
    types.push(type);
  };
  add('<unk>', TOKEN_TYPE.unknown);
  add('<s>', TOKEN_TYPE.control);
  add('</s>', TOKEN_TYPE.control);
  for (let byte = 0; byte < 256; byte++)
    add(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`, TOKEN_TYPE.byte);
  for (const control of options.controlTokens ?? []) add(control, TOKEN_TYPE.control);
  // Printable ASCII (0x21..0x7E); the space is `▁`.
  const fixed = tokens.length + 1 + (0x7e - 0x21 + 1);
  if (options.size < fixed) {
    throw new GembatchError(
      'GB_ERR_BAD_REQUEST',
      `vocabSize must be at least ${fixed} (specials, 256 bytes, control tokens and printable ASCII), got ${options.size}`,
    );
  }
  add(SPM_SPACE, TOKEN_TYPE.normal);
  for (let code = 0x21; code <= 0x7e; code++) add(String.fromCharCode(code), TOKEN_TYPE.normal);
  // Suffixes first (few tokens, used everywhere), then `▁word`s by frequency, then bare words.
  const pieces = [...ENGLISH_SUFFIXES, ...ENGLISH_WORDS.map((word) => SPM_SPACE + word), ...ENGLISH_WORDS];
  for (const piece of pieces) {
    for (let end = 2; end <= [...piece].length; end++) add([...piece].slice(0, end).join(''), TOKEN_TYPE.normal);
  }
  for (let unused = 0; tokens.length < options.size; unused++) add(`<unused${unused}>`, TOKEN_TYPE.unused);
  const scores = new Float32Array(tokens.length);
  for (let id = 0; id < tokens.length; id++) scores[id] = types[id] === TOKEN_TYPE.normal ? -id : 0;
  return { tokens, scores, types: Int32Array.from(types), unknownId: 0, bosId: 1, eosId: 2 };
}
