import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { GembatchError } from '@gembatch/contracts';
import { parseHfUri, resolveHfQuant, type HfAccess, type HfFile } from './hf-source.ts';
import { architectureFromGguf } from './model-architecture.ts';
import { inspectModelFile, PROJECTOR_ARCHITECTURE } from './model-file.ts';
import { GEMMA4_12B_CATALOG, type CatalogEntry, type ModelCatalog } from './model-catalog.ts';
import type { DownloadProgress } from './model-download.ts';
import { downloadLocked, modelLockPath, verifyLockedFile } from './model-lock.ts';
import type { HardwareInfo } from './probe-hardware.ts';
import { selectQuantization, type QuantizationChoice } from './select-quantization.ts';

/**
 * Most sequences a CPU or unified-memory node runs unless configured otherwise. Why 16: on a CPU a
 * step's cost grows with its tokens, so aggregate tok/s flattens past 16 while every job slows.
 */
export const DEFAULT_MAX_SEQUENCES = 16;
/**
 * Most sequences a node with its own GPU memory runs unless configured otherwise (memory still
 * decides: a 24 GB card plans about 10). Why 128: a GPU decode step costs about the same up to
 * a few hundred tokens, so an 80-141 GB card fills with sequences that each add throughput;
 * llama.cpp allows 256 per context.
 */
export const DEFAULT_MAX_GPU_SEQUENCES = 128;

/** The sequence cap for a node's memory kind when none is configured. */
export function defaultMaxSequences(memoryKind: HardwareInfo['memoryKind']): number {
  return memoryKind === 'vram' ? DEFAULT_MAX_GPU_SEQUENCES : DEFAULT_MAX_SEQUENCES;
}
/** Context per sequence unless configured otherwise: a few pages of a document plus the answer. */
export const DEFAULT_CONTEXT_PER_SEQUENCE = 8192;

export interface ResolveModelOptions extends HfAccess {
  /** A local GGUF path or an `hf:` URI. Defaults to the catalog entry chosen for `hardware`. */
  model?: string;
  /** Force this catalog quantization (`Q8_0`, `Q4_0_QAT`...). Defaults to the automatic choice. */
  quant?: string;
  /** Where downloaded models are kept. */
  modelsDir: string;
  /** The model lock (`GEMBATCH_MODEL_LOCK`). Defaults to `<modelsDir>/models.lock.json`. */
  lockFile?: string;
  hardware: HardwareInfo;
  /** Cap on sequences. Defaults to {@link defaultMaxSequences} (`128` with GPU memory, `16` otherwise). */
  sequences?: number;
  /** Context per sequence wanted. Defaults to `8192`. */
  contextPerSequence?: number;
  /** Plan memory for the multimodal projector too. Defaults to `false`. */
  withProjector?: boolean;
  /** Defaults to {@link GEMMA4_12B_CATALOG}. */
  catalog?: ModelCatalog;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

export interface ResolvedModel {
  path: string;
  /** Quantization label (catalog quant, or the GGUF's file type). */
  quant: string;
  /** `file`, an `hf:` URI, or the catalog source it came from. */
  source: string;
  /** The memory plan (sequences, context, why); absent for a projector file. */
  choice?: QuantizationChoice;
}

/**
 * Turns the configuration into a local model file: an existing path is used as is; an `hf:` URI
 * is downloaded (resumable, checksummed) into `modelsDir`; with neither, the catalog entry that
 * fits `hardware` best (or the forced `quant`) is downloaded if missing. The returned choice says
 * how many sequences of what context fit, computed from the file's own architecture when it is on
 * disk.
 */
export async function resolveModel(options: ResolveModelOptions): Promise<ResolvedModel> {
  const catalog = options.catalog ?? GEMMA4_12B_CATALOG;
  if (options.model !== undefined && options.model.trim() !== '') {
    const model = options.model.trim();
    if (model.startsWith('hf:')) {
      const file = await hfFileOf(model, options);
      const local = path.join(options.modelsDir, path.basename(file.file));
      await downloadLocked({
        ...access(options),
        file,
        destination: local,
        lockPath: lockOf(options),
        ...progressAndSignal(options),
      });
      return describeFile(local, model, options, catalog);
    }
    if (!existsSync(model))
      throw new GembatchError(
        'GB_ERR_MODEL_LOAD',
        `model file not found: ${model} (give a GGUF path or an hf:<owner>/<repo>/<file.gguf> URI)`,
      );
    // A file in the models directory is checked against its lock entry, if it has one.
    if (path.resolve(path.dirname(model)) === path.resolve(options.modelsDir))
      await verifyLockedFile(model, lockOf(options));
    return describeFile(model, 'file', options, catalog);
  }

  const choice = selectQuantization(planInput(options, catalog));
  const local = path.join(options.modelsDir, choice.entry.file);
  if (!existsSync(local)) {
    const file = await hfFileOf(choice.entry.source, options);
    const pin = {
      ...(choice.entry.sha256 ? { sha256: choice.entry.sha256 } : {}),
      ...(choice.entry.revision ? { revision: choice.entry.revision } : {}),
    };
    await downloadLocked({
      ...access(options),
      file,
      destination: local,
      lockPath: lockOf(options),
      pin,
      ...progressAndSignal(options),
    });
  } else {
    await verifyLockedFile(local, lockOf(options));
  }
  // Re-plan with the downloaded file's real size and architecture.
  const refined = await describeFile(local, choice.entry.source, { ...options, quant: choice.entry.quant }, catalog);
  return { ...refined, quant: choice.entry.quant, choice: refined.choice ?? choice };
}

function planInput(options: ResolveModelOptions, catalog: ModelCatalog) {
  const { hardware } = options;
  return {
    memoryBytes: hardware.memoryBytes,
    memoryKind: hardware.memoryKind,
    ...(hardware.memoryKind === 'vram' ? { ramBytes: hardware.ramTotalBytes } : {}),
    sequences: options.sequences ?? defaultMaxSequences(hardware.memoryKind),
    contextPerSequence: options.contextPerSequence ?? DEFAULT_CONTEXT_PER_SEQUENCE,
    withProjector: options.withProjector ?? false,
    catalog,
    ...(options.quant ? { quant: options.quant } : {}),
  };
}

function lockOf(options: ResolveModelOptions): string {
  return modelLockPath(options.modelsDir, options.lockFile);
}

function access(options: ResolveModelOptions): HfAccess {
  return {
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.token ? { token: options.token } : {}),
  };
}

function progressAndSignal(options: ResolveModelOptions) {
  return {
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

async function hfFileOf(uri: string, options: ResolveModelOptions): Promise<HfFile> {
  const parsed = parseHfUri(uri);
  if ('file' in parsed) return parsed;
  return resolveHfQuant(parsed.repo, parsed.quant, parsed.revision, options, options.signal);
}

/** Reads a local GGUF and plans sequences for it with its real size and architecture. */
async function describeFile(
  file: string,
  source: string,
  options: ResolveModelOptions,
  catalog: ModelCatalog,
): Promise<ResolvedModel> {
  const { architecture, quant: fileQuant, info } = await inspectModelFile(file, { role: 'any' });
  const quant = options.quant ?? fileQuant;
  if (architecture === PROJECTOR_ARCHITECTURE) return { path: file, quant, source };
  const entry: CatalogEntry = {
    quant,
    file: path.basename(file),
    source,
    bytes: (await stat(file)).size,
    qualityRank: 0,
    note: 'local file',
  };
  try {
    const planned = selectQuantization({
      ...planInput({ ...options, quant }, catalog),
      catalog: { ...catalog, entries: [entry] },
      modelArchitecture: architectureFromGguf(info),
    });
    // The plan's wording is about choosing from the catalog; for a given file only the sizing applies.
    const sizing = planned.reason.slice(planned.reason.indexOf(': ') + 2);
    return {
      path: file,
      quant,
      source,
      choice: { ...planned, reason: `the given file ${path.basename(file)} fits: ${sizing}` },
    };
  } catch (error) {
    // A file the operator chose is run even if the plan says it is tight: the engine halves its
    // sequences until the context fits.
    if (error instanceof GembatchError && error.code === 'GB_ERR_MODEL_LOAD') return { path: file, quant, source };
    throw error;
  }
}
