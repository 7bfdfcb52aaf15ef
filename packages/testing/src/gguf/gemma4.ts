import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { TOKEN_TYPE } from './ggml-types.ts';
import {
  writeGgufFile,
  type GgufFileSummary,
  type GgufMetadataEntry,
  type GgufTensorSpec,
  type TensorSource,
} from './gguf-file-writer.ts';
import { deriveSeed, mulberry32 } from './seeded-random.ts';
import { cacheKey, ensureCachedFile, testModelCacheDir } from './test-models.ts';

/**
 * A tiny random-weight Gemma 4 "unified" (encoder-free) text model and its projector, the same
 * layout as `make_tiny_gemma4.py` wrote with gguf-py (see the research notes): arch `gemma4`,
 * 2 layers, n_embd 64, tied output; projector `clip` with `gemma4uv` (48×48-pixel patches →
 * one linear layer) and `gemma4ua` (640-sample audio frames → one linear layer). Loads in
 * node-llama-cpp (text) and @fugood/llama.node (`initMultimodal`: images and audio).
 * Output is gibberish by design: it exercises the plumbing, not the model.
 */

/** Shape of the tiny model (the reference script's constants). */
const N_EMBD = 64;
const N_LAYER = 2;
const N_HEAD = 2;
const N_HEAD_KV = 1;
const HEAD_DIM = 32;
const N_FF = 128;
/** Training context and sliding window: small, but with both SWA and global layers present. */
const CONTEXT_LENGTH = 8192;
const SLIDING_WINDOW = 128;
/** Vision: 16-px patches merged 3×3 (48 px per token), a 64-wide embedding and 256 positions per axis. */
const PATCH = 16;
const MERGE = 3;
const V_EMBD = 64;
const POSITIONS = 256;
/** Audio: raw 16 kHz samples in 640-sample (40 ms) frames, one token each. */
const AUDIO_FRAME = 640;
/** Weight scale of the reference script (`standard_normal * 0.02`). */
const WEIGHT_STD = 0.02;
const DEFAULT_SEED = 0;

/** File names, as in the corpus. */
export const TINY_GEMMA4_MODEL_FILE = 'tiny-gemma4u.gguf';
export const TINY_GEMMA4_MMPROJ_FILE = 'mmproj-tiny-gemma4u.gguf';

/** Paths of a tiny Gemma 4 model and its multimodal projector. */
export interface TinyGemma4Paths {
  modelPath: string;
  mmprojPath: string;
}

export interface TinyGemma4Options {
  /** PRNG seed for the weights. Defaults to `0`. */
  seed?: number;
}

const GEMMA4_CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n" +
  "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}" +
  "{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}" +
  '{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}';

/** Writes `tiny-gemma4u.gguf` and `mmproj-tiny-gemma4u.gguf` into `dir` (created if missing). */
export async function writeTinyGemma4(dir: string, options: TinyGemma4Options = {}): Promise<TinyGemma4Paths> {
  await mkdir(dir, { recursive: true });
  const modelPath = join(dir, TINY_GEMMA4_MODEL_FILE);
  const mmprojPath = join(dir, TINY_GEMMA4_MMPROJ_FILE);
  await writeTinyGemma4Model(modelPath, options);
  await writeTinyGemma4Projector(mmprojPath, options);
  return { modelPath, mmprojPath };
}

/**
 * The cached tiny Gemma 4 pair under `node_modules/.cache/gembatch-test-models/`, written on
 * first use (each file atomically, so concurrent test files never see a partial one).
 */
export async function ensureTinyGemma4(options: TinyGemma4Options = {}): Promise<TinyGemma4Paths> {
  const key = cacheKey({ kind: 'tiny-gemma4u', seed: options.seed ?? DEFAULT_SEED });
  const dir = testModelCacheDir();
  const [modelPath, mmprojPath] = await Promise.all([
    ensureCachedFile(join(dir, `${key}-${TINY_GEMMA4_MODEL_FILE}`), (tmp) =>
      writeTinyGemma4Model(tmp, options).then(() => undefined),
    ),
    ensureCachedFile(join(dir, `${key}-${TINY_GEMMA4_MMPROJ_FILE}`), (tmp) =>
      writeTinyGemma4Projector(tmp, options).then(() => undefined),
    ),
  ]);
  return { modelPath, mmprojPath };
}

/** The vocabulary of the reference script: Gemma's specials and media markers, bytes, a few words. */
function gemma4Vocab(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const add = (token: string, type: number, score = 0): void => {
    tokens.push(token);
    types.push(type);
    scores.push(score);
  };
  add('<pad>', TOKEN_TYPE.control);
  add('<eos>', TOKEN_TYPE.control);
  add('<bos>', TOKEN_TYPE.control);
  add('<unk>', TOKEN_TYPE.unknown);
  for (const marker of [
    '<start_of_turn>',
    '<end_of_turn>',
    '<|image>',
    '<image|>',
    '<|audio>',
    '<audio|>',
    '<|image|>',
    '<|audio|>',
  ])
    add(marker, TOKEN_TYPE.control);
  for (let byte = 0; byte < 256; byte++)
    add(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`, TOKEN_TYPE.byte);
  const words = [
    '\u2581',
    '\u2581the',
    '\u2581a',
    'e',
    't',
    'a',
    'o',
    'i',
    'n',
    's',
    'r',
    'h',
    'l',
    'd',
    'c',
    'u',
    'm',
    'f',
    'p',
    'g',
    'w',
    'y',
    'b',
    'v',
    'k',
    '\u2581Describe',
    '\u2581image',
    '\u2581audio',
    'user',
    'model',
    '\n',
  ];
  words.forEach((word, rank) => add(word, TOKEN_TYPE.normal, -rank));
  return { tokens, scores, types };
}

/** Writes the tiny `gemma4` text model (all f32, tied output embedding). */
export async function writeTinyGemma4Model(path: string, options: TinyGemma4Options = {}): Promise<GgufFileSummary> {
  const vocab = gemma4Vocab();
  const metadata: GgufMetadataEntry[] = [
    { key: 'general.architecture', type: 'string', value: 'gemma4' },
    { key: 'general.name', type: 'string', value: 'tiny-random-gemma4-unified' },
    { key: 'gemma4.context_length', type: 'u32', value: CONTEXT_LENGTH },
    { key: 'gemma4.embedding_length', type: 'u32', value: N_EMBD },
    { key: 'gemma4.block_count', type: 'u32', value: N_LAYER },
    { key: 'gemma4.feed_forward_length', type: 'u32', value: N_FF },
    { key: 'gemma4.attention.head_count', type: 'u32', value: N_HEAD },
    { key: 'gemma4.attention.head_count_kv', type: 'u32', value: N_HEAD_KV },
    { key: 'gemma4.attention.key_length', type: 'u32', value: HEAD_DIM },
    { key: 'gemma4.attention.value_length', type: 'u32', value: HEAD_DIM },
    { key: 'gemma4.attention.key_length_swa', type: 'u32', value: HEAD_DIM },
    { key: 'gemma4.attention.value_length_swa', type: 'u32', value: HEAD_DIM },
    { key: 'gemma4.attention.sliding_window', type: 'u32', value: SLIDING_WINDOW },
    // Layer 0 sliding-window, layer 1 global: both attention kinds get exercised.
    { key: 'gemma4.attention.sliding_window_pattern', type: 'array', itemType: 'bool', value: [true, false] },
    { key: 'gemma4.attention.layer_norm_rms_epsilon', type: 'f32', value: 1e-6 },
    { key: 'gemma4.embedding_length_per_layer_input', type: 'u32', value: 0 },
    { key: 'gemma4.rope.freq_base', type: 'f32', value: 1e6 },
    { key: 'gemma4.rope.freq_base_swa', type: 'f32', value: 1e4 },
    { key: 'gemma4.final_logit_softcapping', type: 'f32', value: 30 },
    { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: vocab.tokens },
    { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: vocab.scores },
    { key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: vocab.types },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 2 },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 1 },
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: 3 },
    { key: 'tokenizer.ggml.padding_token_id', type: 'u32', value: 0 },
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: true },
    { key: 'tokenizer.chat_template', type: 'string', value: GEMMA4_CHAT_TEMPLATE },
  ];
  const tensors = new TensorList(options.seed ?? DEFAULT_SEED);
  tensors.random('token_embd.weight', [N_EMBD, vocab.tokens.length]);
  tensors.constant('output_norm.weight', [N_EMBD], 1);
  tensors.constant('rope_freqs.weight', [HEAD_DIM / 2], 1);
  for (let layer = 0; layer < N_LAYER; layer++) {
    const p = `blk.${layer}.`;
    tensors.constant(`${p}attn_norm.weight`, [N_EMBD], 1);
    tensors.random(`${p}attn_q.weight`, [N_EMBD, N_HEAD * HEAD_DIM]);
    tensors.random(`${p}attn_k.weight`, [N_EMBD, N_HEAD_KV * HEAD_DIM]);
    tensors.random(`${p}attn_v.weight`, [N_EMBD, N_HEAD_KV * HEAD_DIM]);
    tensors.random(`${p}attn_output.weight`, [N_HEAD * HEAD_DIM, N_EMBD]);
    tensors.constant(`${p}attn_q_norm.weight`, [HEAD_DIM], 1);
    tensors.constant(`${p}attn_k_norm.weight`, [HEAD_DIM], 1);
    tensors.constant(`${p}post_attention_norm.weight`, [N_EMBD], 1);
    tensors.constant(`${p}ffn_norm.weight`, [N_EMBD], 1);
    tensors.random(`${p}ffn_gate.weight`, [N_EMBD, N_FF]);
    tensors.random(`${p}ffn_up.weight`, [N_EMBD, N_FF]);
    tensors.random(`${p}ffn_down.weight`, [N_FF, N_EMBD]);
    tensors.constant(`${p}post_ffw_norm.weight`, [N_EMBD], 1);
  }
  return await writeGgufFile(path, metadata, tensors.list);
}

/** Writes the projector: `clip` with a `gemma4uv` vision and a `gemma4ua` audio path (all f32). */
export async function writeTinyGemma4Projector(
  path: string,
  options: TinyGemma4Options = {},
): Promise<GgufFileSummary> {
  const metadata: GgufMetadataEntry[] = [
    { key: 'general.architecture', type: 'string', value: 'clip' },
    { key: 'clip.has_vision_encoder', type: 'bool', value: true },
    { key: 'clip.has_audio_encoder', type: 'bool', value: true },
    { key: 'clip.vision.projector_type', type: 'string', value: 'gemma4uv' },
    { key: 'clip.audio.projector_type', type: 'string', value: 'gemma4ua' },
  ];
  for (const [part, width] of [
    ['vision', V_EMBD],
    ['audio', AUDIO_FRAME],
  ] as const) {
    metadata.push(
      { key: `clip.${part}.embedding_length`, type: 'u32', value: width },
      { key: `clip.${part}.feed_forward_length`, type: 'u32', value: 0 },
      { key: `clip.${part}.block_count`, type: 'u32', value: 0 },
      { key: `clip.${part}.attention.head_count`, type: 'u32', value: 0 },
      { key: `clip.${part}.projection_dim`, type: 'u32', value: N_EMBD },
      { key: `clip.${part}.attention.layer_norm_epsilon`, type: 'f32', value: 1e-6 },
    );
  }
  metadata.push(
    // The image size is nominal: gemma4uv resizes dynamically within its token budget.
    { key: 'clip.vision.image_size', type: 'u32', value: 224 },
    { key: 'clip.vision.patch_size', type: 'u32', value: PATCH },
    { key: 'clip.vision.image_mean', type: 'array', itemType: 'f32', value: [0, 0, 0] },
    { key: 'clip.vision.image_std', type: 'array', itemType: 'f32', value: [1, 1, 1] },
    { key: 'clip.audio.num_mel_bins', type: 'u32', value: AUDIO_FRAME },
  );
  const patchValues = (PATCH * MERGE) ** 2 * 3;
  const tensors = new TensorList(options.seed ?? DEFAULT_SEED, 1_000);
  tensors.random('v.patch_embd.weight', [patchValues, V_EMBD]);
  tensors.constant('v.patch_embd.bias', [V_EMBD], 0);
  tensors.random('v.position_embd.weight', [V_EMBD, POSITIONS, 2]);
  for (const k of [1, 2, 3]) {
    const width = k === 1 ? patchValues : V_EMBD;
    tensors.constant(`v.patch_norm.${k}.weight`, [width], 1);
    tensors.constant(`v.patch_norm.${k}.bias`, [width], 0);
  }
  tensors.random('mm.input_projection.weight', [V_EMBD, N_EMBD]);
  tensors.random('mm.a.input_projection.weight', [AUDIO_FRAME, N_EMBD]);
  return await writeGgufFile(path, metadata, tensors.list);
}

/** Collects f32 tensors, giving each random one its own seeded stream. */
class TensorList {
  readonly list: GgufTensorSpec[] = [];

  readonly #seed: number;
  readonly #streamBase: number;

  constructor(seed: number, streamBase = 0) {
    this.#seed = seed;
    this.#streamBase = streamBase;
  }

  random(name: string, dims: number[]): void {
    this.list.push({
      name,
      dims,
      type: 'f32',
      source: normalSource(deriveSeed(this.#seed, this.#streamBase + this.list.length), WEIGHT_STD),
    });
  }

  constant(name: string, dims: number[], value: number): void {
    this.list.push({ name, dims, type: 'f32', source: (out) => out.fill(value) });
  }
}

/** Normal(0, std) values from a seeded stream (Box–Muller), like the reference's `standard_normal * std`. */
function normalSource(seed: number, std: number): TensorSource {
  const random = mulberry32(seed);
  return (out) => {
    for (let i = 0; i < out.length; i += 2) {
      // 1 - u keeps the logarithm's argument in (0, 1].
      const radius = Math.sqrt(-2 * Math.log(1 - random())) * std;
      const angle = 2 * Math.PI * random();
      out[i] = radius * Math.cos(angle);
      if (i + 1 < out.length) out[i + 1] = radius * Math.sin(angle);
    }
  };
}
