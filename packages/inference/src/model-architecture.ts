import type { GgufFileInfo } from 'node-llama-cpp';

/**
 * The shape of a transformer that decides how much KV cache a sequence needs. Gemma models mix
 * sliding-window layers (KV capped at the window) with global layers (KV grows with the context).
 */
export interface ModelArchitecture {
  /** Transformer blocks. */
  layers: number;
  /** KV heads of a sliding-window layer (or of every layer when there is no sliding window). */
  kvHeads: number;
  /** Key/value head dimension of a sliding-window layer (or of every layer). */
  headDim: number;
  /** Layers that attend to the whole context. Equals `layers` for a model without a sliding window. */
  globalLayers: number;
  /** KV heads of a global layer. Defaults to `kvHeads`. */
  globalKvHeads?: number;
  /** Key/value head dimension of a global layer. Defaults to `headDim`. */
  globalHeadDim?: number;
  /** Tokens a sliding-window layer attends to; `undefined` when every layer is global. */
  slidingWindow?: number;
  /** Context the model was trained for. */
  trainContext: number;
  /** Bytes per KV element. Defaults to `2` (llama.cpp's F16 cache). */
  kvBytesPerElement?: number;
}

/** llama.cpp keeps the K and V caches in F16 unless told otherwise. */
const F16_BYTES = 2;

/**
 * KV cache bytes for `sequences` sequences of `contextPerSequence` tokens each. Sliding-window
 * layers hold at most the window (plus one batch of tokens llama.cpp keeps while it slides).
 */
export function kvCacheBytes(
  arch: ModelArchitecture,
  sequences: number,
  contextPerSequence: number,
  batchTokens = 512,
): number {
  const bytes = arch.kvBytesPerElement ?? F16_BYTES;
  const globalPerToken = 2 * (arch.globalKvHeads ?? arch.kvHeads) * (arch.globalHeadDim ?? arch.headDim) * bytes;
  const slidingPerToken = 2 * arch.kvHeads * arch.headDim * bytes;
  const slidingLayers = arch.layers - arch.globalLayers;
  const slidingTokens =
    arch.slidingWindow === undefined
      ? contextPerSequence
      : Math.min(contextPerSequence, arch.slidingWindow + batchTokens);
  const perSequence =
    arch.globalLayers * globalPerToken * contextPerSequence + slidingLayers * slidingPerToken * slidingTokens;
  return sequences * perSequence;
}

type Metadata = Record<string, unknown>;

function numberAt(metadata: Metadata, key: string): number | undefined {
  const value = metadata[key];
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/** First element of a per-layer array, or the scalar itself. */
function scalarOrFirst(metadata: Metadata, key: string): number | undefined {
  const value = metadata[key];
  if (Array.isArray(value)) return typeof value[0] === 'number' ? value[0] : undefined;
  return numberAt(metadata, key);
}

/**
 * Reads the architecture from a GGUF's metadata (`<arch>.block_count`, `attention.head_count_kv`,
 * `attention.key_length[_swa]`, `attention.sliding_window[_pattern]`, `context_length`), so a local
 * file's real numbers replace the catalog's defaults.
 */
export function architectureFromGguf(info: Pick<GgufFileInfo, 'metadata'>): ModelArchitecture {
  const general = info.metadata.general as { architecture?: string } | undefined;
  const name = general?.architecture ?? 'llama';
  const raw = (info.metadata as unknown as Record<string, unknown>)[name];
  const metadata = flatten(typeof raw === 'object' && raw !== null ? (raw as Metadata) : {});
  const layers = numberAt(metadata, 'block_count') ?? 1;
  const heads = scalarOrFirst(metadata, 'attention.head_count') ?? 1;
  const embedding = numberAt(metadata, 'embedding_length') ?? heads;
  const kvHeadsRaw = metadata['attention.head_count_kv'];
  const kvHeads = scalarOrFirst(metadata, 'attention.head_count_kv') ?? heads;
  const keyLength = numberAt(metadata, 'attention.key_length') ?? Math.floor(embedding / heads);
  const keyLengthSwa = numberAt(metadata, 'attention.key_length_swa');
  const window = numberAt(metadata, 'attention.sliding_window');
  const pattern = metadata['attention.sliding_window_pattern'];
  const trainContext = numberAt(metadata, 'context_length') ?? 2048;

  if (window === undefined || window <= 0) {
    return { layers, kvHeads, headDim: keyLength, globalLayers: layers, trainContext };
  }
  // A bool per layer (true = sliding) or a period (every n-th layer is global), as llama.cpp reads it.
  let globalLayers: number;
  if (Array.isArray(pattern)) globalLayers = pattern.filter((sliding) => sliding === false).length;
  else if (typeof pattern === 'number' && pattern > 0) globalLayers = Math.floor(layers / pattern);
  else globalLayers = Math.max(1, Math.floor(layers / 6)); // Gemma 3/4 default: one global layer in six.
  const perLayerKv = Array.isArray(kvHeadsRaw)
    ? (kvHeadsRaw as unknown[]).filter((v): v is number => typeof v === 'number')
    : [];
  const globalKvHeads =
    Array.isArray(pattern) && perLayerKv.length === pattern.length ? perLayerKv[pattern.indexOf(false)] : undefined;
  return {
    layers,
    kvHeads,
    headDim: keyLengthSwa ?? keyLength,
    globalLayers,
    ...(globalKvHeads !== undefined ? { globalKvHeads } : {}),
    ...(keyLengthSwa !== undefined ? { globalHeadDim: keyLength } : {}),
    slidingWindow: window,
    trainContext,
  };
}

/** node-llama-cpp nests dotted keys (`attention.head_count`); this flattens them back. */
function flatten(object: Metadata, prefix = ''): Metadata {
  const out: Metadata = {};
  for (const [key, value] of Object.entries(object)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      Object.assign(out, flatten(value as Metadata, path));
    else out[path] = value;
  }
  return out;
}
