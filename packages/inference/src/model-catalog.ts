import type { ModelArchitecture } from './model-architecture.ts';

/** One downloadable GGUF of a catalog model. */
export interface CatalogEntry {
  /** Label operators use to force it (`GEMBATCH_QUANT`, `gembatch models pull <quant>`). */
  quant: string;
  /** File name on disk (in the models directory). */
  file: string;
  /** Where it is downloaded from: `hf:<owner>/<repo>/<file>`. */
  source: string;
  /** Size of the file in bytes (used to plan memory before the file exists). */
  bytes: number;
  /** Higher is better output quality; the selector prefers the highest that fits. */
  qualityRank: number;
  /** sha256 of the file when pinned; otherwise the server's checksum is used. A mismatch fails with `GB_ERR_MODEL_CHECKSUM` and the file is deleted. */
  sha256?: string;
  /** Repository commit (40 hex) the file is downloaded from when pinned; otherwise the `source`'s revision (`main`). */
  revision?: string;
  /** One line for `gembatch models list`. */
  note: string;
}

/** A model family member with its quantizations and multimodal projector. */
export interface ModelCatalog {
  id: string;
  displayName: string;
  /** Architecture used for KV-cache planning when no local file is there to read it from. */
  architecture: ModelArchitecture;
  entries: readonly CatalogEntry[];
  /** The multimodal projector (`mmproj`), needed for image and audio input. */
  projector: Omit<CatalogEntry, 'qualityRank'>;
  /** Memory llama.cpp needs beyond weights and KV cache at batch 512 (compute graph, logits). */
  computeBufferBytes: number;
}

const GB = 1e9;
const MB = 1e6;
const GGUF_REPO = 'giladgd/gemma-4-12B-it-GGUF';
const QAT_REPO = 'google/gemma-4-12b-it-qat-q4_0-gguf';

/**
 * Pins: no entry carries `revision` or `sha256` yet. Hugging Face could not be reached from the
 * machine this was built on, and no first-party record of the repositories' commits and files'
 * sha256 was found, so none is written here rather than an unverified one (README, "Model pins").
 * Until pinned, a download is checked against the sha256 the Hub publishes for the file, and the
 * model lock (`model-lock.ts`) records the commit and sha256 of the first download and holds every
 * later download and load to them (trust on first use).
 *
 * Gemma 4 12B instruction-tuned. Sizes are the published file sizes (DESIGN.md "Facts"); the
 * repositories and file names follow node-llama-cpp's recommended-model list and Google's QAT
 * naming, and were not downloaded when the catalog was written: `gembatch models pull` verifies each
 * file against the server's sha256 as it downloads.
 *
 * Quality ranks: BF16 is the reference and Q8_0 is near-lossless. Google's QAT Q4_0 is trained to be
 * quantized and ranks above the post-training Q6_K/Q5_K_M/Q4_K_M: on Gemma 3 12B it measured
 * perplexity 9.26 against 9.56 for a plain Q4_0 and 9.85 for Q5_K_S (stduhpf's published table), at
 * a smaller size. The larger K-quants stay in the catalog for operators who force them.
 */
export const GEMMA4_12B_CATALOG: ModelCatalog = {
  id: 'gemma-4-12b-it',
  displayName: 'Gemma 4 12B it',
  architecture: {
    layers: 48,
    kvHeads: 8,
    headDim: 256,
    // One global layer in six (the Gemma 3/4 interleave), the rest on a 1024-token window.
    globalLayers: 8,
    slidingWindow: 1024,
    trainContext: 262_144,
  },
  entries: [
    {
      quant: 'BF16',
      file: 'gemma-4-12B-it-BF16.gguf',
      source: `hf:${GGUF_REPO}/gemma-4-12B-it-BF16.gguf`,
      bytes: 24.0 * GB,
      qualityRank: 100,
      note: 'reference weights',
    },
    {
      quant: 'Q8_0',
      file: 'gemma-4-12B-it-Q8_0.gguf',
      source: `hf:${GGUF_REPO}/gemma-4-12B-it-Q8_0.gguf`,
      bytes: 12.72 * GB,
      qualityRank: 90,
      note: 'near-lossless',
    },
    {
      quant: 'Q4_0_QAT',
      file: 'gemma-4-12b-it-q4_0.gguf',
      source: `hf:${QAT_REPO}/gemma-4-12b-it-q4_0.gguf`,
      bytes: 6.98 * GB,
      qualityRank: 80,
      note: 'Google quantization-aware training: near-Q8 quality at Q4 size',
    },
    {
      quant: 'Q6_K',
      file: 'gemma-4-12B-it-Q6_K.gguf',
      source: `hf:${GGUF_REPO}/gemma-4-12B-it-Q6_K.gguf`,
      bytes: 9.8 * GB,
      qualityRank: 75,
      note: 'post-training quantization',
    },
    {
      quant: 'Q5_K_M',
      file: 'gemma-4-12B-it-Q5_K_M.gguf',
      source: `hf:${GGUF_REPO}/gemma-4-12B-it-Q5_K_M.gguf`,
      bytes: 8.5 * GB,
      qualityRank: 70,
      note: 'post-training quantization',
    },
    {
      quant: 'Q4_K_M',
      file: 'gemma-4-12B-it-Q4_K_M.gguf',
      source: `hf:${GGUF_REPO}/gemma-4-12B-it-Q4_K_M.gguf`,
      bytes: 7.1 * GB,
      qualityRank: 60,
      note: 'post-training quantization',
    },
  ],
  projector: {
    quant: 'F16',
    file: 'mmproj-gemma-4-12B-it-F16.gguf',
    source: `hf:${GGUF_REPO}/mmproj-gemma-4-12B-it-F16.gguf`,
    bytes: 150 * MB,
    note: 'image and audio projector',
  },
  // llama.cpp's compute buffer for a 12B model with a 262k vocabulary at batch 512 (estimated, not measured).
  computeBufferBytes: 512 * 1024 ** 2,
};

/** The catalog entry whose quant label matches, case-insensitively (`q8_0`, `Q4_0_QAT`, `qat`). */
export function findCatalogEntry(catalog: ModelCatalog, quant: string): CatalogEntry | undefined {
  const wanted = quant.trim().toUpperCase().replaceAll('-', '_');
  return (
    catalog.entries.find((e) => e.quant === wanted) ??
    (wanted === 'QAT' || wanted === 'Q4_0' ? catalog.entries.find((e) => e.quant === 'Q4_0_QAT') : undefined)
  );
}
