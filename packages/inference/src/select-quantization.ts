import { GembatchError } from '@gembatch/contracts';
import { kvCacheBytes, type ModelArchitecture } from './model-architecture.ts';
import type { CatalogEntry, ModelCatalog } from './model-catalog.ts';

/** What the memory number means: dedicated VRAM, Apple unified memory, or system RAM (no GPU). */
export type MemoryKind = 'vram' | 'unified' | 'ram';

export interface SelectQuantizationInput {
  /** Accelerator memory (VRAM), unified memory, or RAM on a CPU-only node, in bytes. */
  memoryBytes: number;
  /** How to read `memoryBytes`. Defaults to `vram`. */
  memoryKind?: MemoryKind;
  /** System RAM that may hold layers a GPU cannot (partial offload). Defaults to `0` (no partial offload). */
  ramBytes?: number;
  /** Most sequences wanted (the config's cap); the choice may give fewer. */
  sequences: number;
  /** Context tokens wanted per sequence; capped by the model's training context. */
  contextPerSequence: number;
  catalog: ModelCatalog;
  /** Architecture for KV planning (e.g. read from a local GGUF). Defaults to `catalog.architecture`. */
  modelArchitecture?: ModelArchitecture;
  /** Count the multimodal projector in. Defaults to `true`. */
  withProjector?: boolean;
  /** Shortest context per sequence worth running when memory is tight. Defaults to `1024`. */
  minContextPerSequence?: number;
  /** Only consider this catalog quant (an operator's forced choice). Defaults to every entry. */
  quant?: string;
}

export interface QuantizationChoice {
  quant: string;
  entry: CatalogEntry;
  /** `full`: everything on the accelerator; `partial`: some layers in RAM; `cpu`: no accelerator. */
  offload: 'full' | 'partial' | 'cpu';
  /** Layers to put on the GPU: `max`, a count (partial), or `0` (CPU). */
  gpuLayers: number | 'max';
  sequences: number;
  contextPerSequence: number;
  memoryBytes: number;
  memoryKind: MemoryKind;
  /** The part of `memoryBytes` the model may use. */
  budgetBytes: number;
  /** Weights + projector + compute buffer + KV cache + safety margin of the choice. */
  requiredBytes: number;
  kvCacheBytes: number;
  /** One readable line: why this entry. */
  reason: string;
}

/** How one catalog entry fares on this memory (for `gembatch models list`). */
export interface QuantizationAssessment {
  entry: CatalogEntry;
  /** `full` at the wanted context, `short-context`, `partial` offload, or `no`. */
  fit: 'full' | 'short-context' | 'partial' | 'no';
  /** Sequences at `contextPerSequence` (0 when it does not fit). */
  sequences: number;
  contextPerSequence: number;
  /** Memory it needs with one sequence at the wanted context. */
  requiredBytes: number;
}

/**
 * macOS lets the GPU wire about two thirds of unified memory (Metal's recommended working set on
 * 16-32 GB machines); the rest belongs to the OS and apps.
 */
const UNIFIED_GPU_FRACTION = 2 / 3;
/** Headroom for allocator fragmentation, driver buffers and estimate error. */
const SAFETY_FRACTION = 0.05;
/** A partial offload keeps this share of RAM for the OS, page cache and the rest of the node. */
const RAM_FRACTION = 2 / 3;

interface Plan {
  budget: number;
  margin: number;
  arch: ModelArchitecture;
  projector: number;
  compute: number;
  context: number;
  minContext: number;
}

function plan(input: SelectQuantizationInput): Plan {
  const kind = input.memoryKind ?? 'vram';
  const budget = kind === 'unified' ? input.memoryBytes * UNIFIED_GPU_FRACTION : input.memoryBytes;
  const arch = input.modelArchitecture ?? input.catalog.architecture;
  return {
    budget,
    margin: budget * SAFETY_FRACTION,
    arch,
    projector: input.withProjector === false ? 0 : input.catalog.projector.bytes,
    compute: input.catalog.computeBufferBytes,
    context: Math.max(1, Math.min(input.contextPerSequence, arch.trainContext)),
    minContext: Math.min(input.minContextPerSequence ?? 1024, input.contextPerSequence),
  };
}

function fixedBytes(p: Plan, entry: CatalogEntry): number {
  return entry.bytes + p.projector + p.compute + p.margin;
}

/** Sequences of `context` tokens that fit next to the weights (0 when not even one does). */
function sequencesThatFit(p: Plan, entry: CatalogEntry, context: number): number {
  const left = p.budget - fixedBytes(p, entry);
  return left <= 0 ? 0 : Math.floor(left / kvCacheBytes(p.arch, 1, context));
}

/** Best quality first; among equals, the smaller file (more room for sequences). */
function byQuality(a: CatalogEntry, b: CatalogEntry): number {
  return b.qualityRank - a.qualityRank || a.bytes - b.bytes;
}

function candidates(input: SelectQuantizationInput): CatalogEntry[] {
  const entries =
    input.quant === undefined
      ? [...input.catalog.entries]
      : input.catalog.entries.filter((e) => e.quant.toUpperCase() === input.quant?.toUpperCase());
  if (entries.length === 0) {
    throw new GembatchError(
      'GB_ERR_CONFIG',
      `unknown quantization ${JSON.stringify(input.quant)}; the catalog has ${input.catalog.entries.map((e) => e.quant).join(', ')}`,
    );
  }
  return entries.sort(byQuality);
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

function choice(
  input: SelectQuantizationInput,
  p: Plan,
  entry: CatalogEntry,
  sequences: number,
  context: number,
  why: string,
): QuantizationChoice {
  const kv = kvCacheBytes(p.arch, sequences, context);
  const kind = input.memoryKind ?? 'vram';
  const requiredBytes = fixedBytes(p, entry) + kv;
  return {
    quant: entry.quant,
    entry,
    offload: kind === 'ram' ? 'cpu' : 'full',
    gpuLayers: kind === 'ram' ? 0 : 'max',
    sequences,
    contextPerSequence: context,
    memoryBytes: input.memoryBytes,
    memoryKind: kind,
    budgetBytes: p.budget,
    requiredBytes,
    kvCacheBytes: kv,
    reason: `${why}: ${entry.quant} weights ${gib(entry.bytes)} + KV ${gib(kv)} for ${sequences}×${context} tokens + ${p.projector > 0 ? 'projector, ' : ''}compute buffer and margin = ${gib(requiredBytes)} of a ${gib(p.budget)} ${kind} budget`,
  };
}

/**
 * Picks the highest-quality catalog entry whose weights + KV cache + projector + compute buffer +
 * a safety margin fit the memory, and the number of sequences that fit beside it (capped by
 * `sequences`). When nothing fits at the wanted context it halves the context down to
 * `minContextPerSequence`; when nothing fits at all it plans a partial offload into RAM (`vram`
 * with `ramBytes`). Throws `GB_ERR_MODEL_LOAD` when no entry can run. Pure: no I/O.
 */
export function selectQuantization(input: SelectQuantizationInput): QuantizationChoice {
  const p = plan(input);
  const entries = candidates(input);
  const wanted = Math.max(1, Math.floor(input.sequences));

  for (const entry of entries) {
    const fit = sequencesThatFit(p, entry, p.context);
    if (fit >= 1) {
      const why =
        entry === entries[0]
          ? `${entry.quant} is the best quantization of the catalog and fits`
          : `${entry.quant} is the best quantization that fits`;
      return choice(input, p, entry, Math.min(wanted, fit), p.context, why);
    }
  }
  for (let context = Math.floor(p.context / 2); context >= p.minContext; context = Math.floor(context / 2)) {
    for (const entry of entries) {
      const fit = sequencesThatFit(p, entry, context);
      if (fit >= 1)
        return choice(
          input,
          p,
          entry,
          Math.min(wanted, fit),
          context,
          `nothing fits ${p.context} tokens per sequence; ${entry.quant} fits a short context`,
        );
    }
  }
  const partial = (input.memoryKind ?? 'vram') === 'vram' ? planPartialOffload(input, p, entries) : undefined;
  if (partial) return partial;

  const smallest = [...entries].sort((a, b) => a.bytes - b.bytes)[0] as CatalogEntry;
  const need = fixedBytes(p, smallest) + kvCacheBytes(p.arch, 1, p.minContext);
  throw new GembatchError(
    'GB_ERR_MODEL_LOAD',
    `no quantization of ${input.catalog.displayName} fits: the smallest (${smallest.quant}) needs about ${gib(need)} with a ${p.minContext}-token context, this node has a ${gib(p.budget)} ${input.memoryKind ?? 'vram'} budget${input.ramBytes ? ` and ${gib(input.ramBytes)} RAM` : ''}`,
    {
      details: { memoryBytes: input.memoryBytes, budgetBytes: p.budget, neededBytes: need, quant: smallest.quant },
    },
  );
}

/** Splits layers between GPU and RAM: the entry that keeps the largest share on the GPU wins. */
function planPartialOffload(
  input: SelectQuantizationInput,
  p: Plan,
  entries: CatalogEntry[],
): QuantizationChoice | undefined {
  const ram = (input.ramBytes ?? 0) * RAM_FRACTION;
  if (ram <= 0) return undefined;
  const layers = p.arch.layers;
  let best: { entry: CatalogEntry; gpuLayers: number; context: number } | undefined;
  for (const entry of entries) {
    const context = p.minContext;
    // The output layer and embeddings weigh about one block.
    const perLayerWeights = entry.bytes / (layers + 1);
    const perLayerKv = kvCacheBytes(p.arch, 1, context) / layers;
    const gpuRoom = p.budget - p.projector - p.compute - p.margin;
    const gpuLayers = Math.max(0, Math.min(layers, Math.floor(gpuRoom / (perLayerWeights + perLayerKv))));
    const ramNeed = (layers - gpuLayers + 1) * perLayerWeights + (layers - gpuLayers) * perLayerKv;
    if (gpuLayers === 0 || ramNeed > ram) continue;
    if (!best || gpuLayers > best.gpuLayers) best = { entry, gpuLayers, context };
  }
  if (!best) return undefined;
  const { entry, gpuLayers, context } = best;
  const kv = kvCacheBytes(p.arch, 1, context);
  return {
    quant: entry.quant,
    entry,
    offload: 'partial',
    gpuLayers,
    sequences: 1,
    contextPerSequence: context,
    memoryBytes: input.memoryBytes,
    memoryKind: 'vram',
    budgetBytes: p.budget,
    requiredBytes: entry.bytes + p.projector + p.compute + p.margin + kv,
    kvCacheBytes: kv,
    reason: `no quantization fits ${gib(p.budget)} of VRAM; partial offload of ${entry.quant} with ${gpuLayers}/${layers} layers on the GPU (the largest share of any quantization) and the rest in RAM`,
  };
}

/** How every catalog entry fares on this memory, best quality first (for `gembatch models list`). */
export function assessQuantizations(input: SelectQuantizationInput): QuantizationAssessment[] {
  const p = plan(input);
  return candidates(input).map((entry) => {
    const requiredBytes = fixedBytes(p, entry) + kvCacheBytes(p.arch, 1, p.context);
    const full = sequencesThatFit(p, entry, p.context);
    if (full >= 1)
      return {
        entry,
        fit: 'full',
        sequences: Math.min(full, Math.max(1, input.sequences)),
        contextPerSequence: p.context,
        requiredBytes,
      };
    for (let context = Math.floor(p.context / 2); context >= p.minContext; context = Math.floor(context / 2)) {
      const short = sequencesThatFit(p, entry, context);
      if (short >= 1)
        return {
          entry,
          fit: 'short-context',
          sequences: Math.min(short, Math.max(1, input.sequences)),
          contextPerSequence: context,
          requiredBytes,
        };
    }
    const partial = (input.memoryKind ?? 'vram') === 'vram' ? planPartialOffload(input, p, [entry]) : undefined;
    if (partial)
      return { entry, fit: 'partial', sequences: 1, contextPerSequence: partial.contextPerSequence, requiredBytes };
    return { entry, fit: 'no', sequences: 0, contextPerSequence: p.context, requiredBytes };
  });
}
