import { GembatchError } from '@gembatch/contracts';
import { LLAMA_FILE_TYPE, type GgmlTypeName } from './ggml-types.ts';
import {
  GGUF_ALIGNMENT,
  writeGgufFile,
  type GgufFileSummary,
  type GgufMetadataEntry,
  type GgufTensorSpec,
  type TensorSource,
} from './gguf-file-writer.ts';
import { buildLlamaVocab } from './llama-vocab.ts';
import { deriveSeed, mulberry32 } from './seeded-random.ts';

/** Shape and storage of a tiny random-weight `llama` model. */
export interface LlamaGgufSpec {
  /** Transformer blocks. */
  layers: number;
  /** Hidden size (`n_embd`); a multiple of `heads`, and of 32 for `q8_0`. */
  embeddingLength: number;
  /** FFN inner size; a multiple of 32 for `q8_0`. */
  feedForwardLength: number;
  /** Query heads. */
  heads: number;
  /** Key/value heads (GQA); divides `heads`. */
  kvHeads: number;
  /** Training context written as `llama.context_length`. */
  contextLength: number;
  /** Tokens in the vocabulary (see `buildLlamaVocab` for the minimum). */
  vocabSize: number;
  /** Storage of the weight matrices; norms are always f32. */
  type: GgmlTypeName;
  /** PRNG seed: same spec and seed, same bytes. Defaults to `1`. */
  seed?: number;
  /**
   * Jinja chat template written as `tokenizer.chat_template`. Control tokens it uses
   * (`<start_of_turn>`, `<end_of_turn>`) are added to the vocabulary. Defaults to none.
   */
  chatTemplate?: string;
  /** `general.name`. Defaults to `gembatch-tiny-llama`. */
  name?: string;
  /**
   * The end-of-sequence token's row of the output matrix is zero, so its logit is always 0 while
   * the largest of the others (random, centred on 0) is positive: greedy decoding never ends on its
   * own and runs to the token limit on every CPU (which token a random model ends on otherwise
   * depends on the CPU's float rounding). Defaults to `false`.
   */
  endless?: boolean;
}

/** Control tokens a Gemma-style chat template needs in the vocabulary. */
const CHAT_CONTROL_TOKENS = ['<start_of_turn>', '<end_of_turn>'];
/** RoPE base and RMSNorm epsilon of Llama-2-style models. */
const ROPE_FREQ_BASE = 10_000;
const RMS_EPSILON = 1e-5;

/**
 * Writes a GGUF v3 `llama` model with random weights (uniform, std 1/√fan_in, seeded) and a working
 * SentencePiece-style tokenizer with byte fallback. Streams to disk: memory use does not grow
 * with the model. Throws `GB_ERR_BAD_REQUEST` for shapes llama.cpp could not load.
 */
export async function writeLlamaGguf(path: string, spec: LlamaGgufSpec): Promise<GgufFileSummary> {
  validate(spec);
  const seed = spec.seed ?? 1;
  const headDim = spec.embeddingLength / spec.heads;
  const kvDim = headDim * spec.kvHeads;
  const vocab = buildLlamaVocab({
    size: spec.vocabSize,
    controlTokens: spec.chatTemplate === undefined ? [] : CHAT_CONTROL_TOKENS,
  });
  const metadata: GgufMetadataEntry[] = [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.name', type: 'string', value: spec.name ?? 'gembatch-tiny-llama' },
    { key: 'general.file_type', type: 'u32', value: LLAMA_FILE_TYPE[spec.type] },
    { key: 'general.alignment', type: 'u32', value: GGUF_ALIGNMENT },
    { key: 'llama.context_length', type: 'u32', value: spec.contextLength },
    { key: 'llama.embedding_length', type: 'u32', value: spec.embeddingLength },
    { key: 'llama.block_count', type: 'u32', value: spec.layers },
    { key: 'llama.feed_forward_length', type: 'u32', value: spec.feedForwardLength },
    { key: 'llama.attention.head_count', type: 'u32', value: spec.heads },
    { key: 'llama.attention.head_count_kv', type: 'u32', value: spec.kvHeads },
    { key: 'llama.rope.dimension_count', type: 'u32', value: headDim },
    { key: 'llama.rope.freq_base', type: 'f32', value: ROPE_FREQ_BASE },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: RMS_EPSILON },
    { key: 'llama.vocab_size', type: 'u32', value: spec.vocabSize },
    { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: vocab.tokens },
    { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: vocab.scores },
    { key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: vocab.types },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: vocab.bosId },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: vocab.eosId },
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: vocab.unknownId },
    { key: 'tokenizer.ggml.padding_token_id', type: 'u32', value: vocab.unknownId },
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: true },
    { key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: false },
  ];
  if (spec.chatTemplate !== undefined)
    metadata.push({ key: 'tokenizer.chat_template', type: 'string', value: spec.chatTemplate });

  const d = spec.embeddingLength;
  const ff = spec.feedForwardLength;
  const tensors: GgufTensorSpec[] = [];
  const matrix = (name: string, ne0: number, ne1: number, zeroRows: readonly number[] = []): void => {
    const values = uniformSource(deriveSeed(seed, tensors.length), ne0);
    tensors.push({
      name,
      dims: [ne0, ne1],
      type: spec.type,
      source: zeroRows.length === 0 ? values : withZeroRows(values, ne0, zeroRows),
    });
  };
  const norm = (name: string, size: number): void => {
    tensors.push({ name, dims: [size], type: 'f32', source: constantSource(1) });
  };
  matrix('token_embd.weight', d, spec.vocabSize);
  for (let layer = 0; layer < spec.layers; layer++) {
    const p = `blk.${layer}.`;
    norm(`${p}attn_norm.weight`, d);
    matrix(`${p}attn_q.weight`, d, d);
    matrix(`${p}attn_k.weight`, d, kvDim);
    matrix(`${p}attn_v.weight`, d, kvDim);
    matrix(`${p}attn_output.weight`, d, d);
    norm(`${p}ffn_norm.weight`, d);
    matrix(`${p}ffn_gate.weight`, d, ff);
    matrix(`${p}ffn_up.weight`, d, ff);
    matrix(`${p}ffn_down.weight`, ff, d);
  }
  norm('output_norm.weight', d);
  matrix('output.weight', d, spec.vocabSize, spec.endless ? [vocab.eosId] : []);
  return await writeGgufFile(path, metadata, tensors);
}

/** Uniform values in ±√3/√fanIn (standard deviation 1/√fanIn), from a seeded stream. */
export function uniformSource(seed: number, fanIn: number): TensorSource {
  const random = mulberry32(seed);
  // A uniform on [-a, a] has standard deviation a/√3.
  const bound = Math.sqrt(3 / fanIn);
  return (out) => {
    for (let i = 0; i < out.length; i++) out[i] = (random() * 2 - 1) * bound;
  };
}

/** `source` with the rows (of `rowLength` values, in storage order) at `rows` set to 0. */
function withZeroRows(source: TensorSource, rowLength: number, rows: readonly number[]): TensorSource {
  return (out, offset) => {
    source(out, offset);
    for (const row of rows) {
      const start = Math.max(0, row * rowLength - offset);
      const end = Math.min(out.length, (row + 1) * rowLength - offset);
      if (start < end) out.fill(0, start, end);
    }
  };
}

/** Every value the same (norm weights of 1, biases of 0). */
export function constantSource(value: number): TensorSource {
  return (out) => out.fill(value);
}

function validate(spec: LlamaGgufSpec): void {
  const problems: string[] = [];
  const positive = [
    'layers',
    'embeddingLength',
    'feedForwardLength',
    'heads',
    'kvHeads',
    'contextLength',
    'vocabSize',
  ] as const;
  for (const field of positive) {
    if (!Number.isInteger(spec[field]) || spec[field] <= 0) problems.push(`${field} must be a positive integer`);
  }
  if (!['f32', 'f16', 'q8_0'].includes(spec.type)) problems.push(`type must be f32, f16 or q8_0`);
  if (problems.length === 0) {
    if (spec.embeddingLength % spec.heads !== 0) problems.push('embeddingLength must be a multiple of heads');
    if (spec.heads % spec.kvHeads !== 0) problems.push('heads must be a multiple of kvHeads');
    if ((spec.embeddingLength / spec.heads) % 2 !== 0)
      problems.push('the head size (embeddingLength / heads) must be even for RoPE');
    if (spec.type === 'q8_0' && (spec.embeddingLength % 32 !== 0 || spec.feedForwardLength % 32 !== 0)) {
      problems.push('q8_0 needs embeddingLength and feedForwardLength to be multiples of 32');
    }
  }
  if (spec.seed !== undefined && !Number.isInteger(spec.seed)) problems.push('seed must be an integer');
  if (problems.length > 0)
    throw new GembatchError('GB_ERR_BAD_REQUEST', `invalid LlamaGgufSpec: ${problems.join('; ')}`, {
      details: { problems },
    });
}
