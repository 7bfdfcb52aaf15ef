export * from './engine.ts';
export {
  createLlamaCppEngine,
  flashAttentionOption,
  LlamaCppEngine,
  type LlamaCppEngineOptions,
} from './llama-cpp-engine.ts';
export { probeHardware, type HardwareInfo, type ProbeHardwareOptions } from './probe-hardware.ts';
export { loadLlama, defaultThreads, acceleratorOf, type GpuOption, type LoadLlamaOptions } from './load-llama.ts';
export { GEMMA4_12B_CATALOG, findCatalogEntry, type CatalogEntry, type ModelCatalog } from './model-catalog.ts';
export { architectureFromGguf, kvCacheBytes, type ModelArchitecture } from './model-architecture.ts';
export {
  selectQuantization,
  assessQuantizations,
  type SelectQuantizationInput,
  type QuantizationChoice,
  type QuantizationAssessment,
  type MemoryKind,
} from './select-quantization.ts';
export { PromptFormat, type PromptMode, type PromptPlan, type ThoughtMarkers } from './prompt-format.ts';
export {
  planChunks,
  sliceText,
  tokenizeInTurns,
  TOKENIZE_SLICE_CHARS,
  type PlanChunksOptions,
  type TokenChunk,
  type TextChunk,
  type ChunkTokenizer,
} from './plan-chunks.ts';
export {
  compileJsonSchema,
  cachedValidatorCount,
  VALIDATOR_CACHE_SIZE,
  type JsonSchemaValidator,
} from './json-schema-validator.ts';
export {
  generateStructured,
  parseJsonAnswer,
  type GenerateStructuredOptions,
  type StructuredResult,
} from './structured-output.ts';
export {
  resolveModel,
  defaultMaxSequences,
  DEFAULT_MAX_SEQUENCES,
  DEFAULT_MAX_GPU_SEQUENCES,
  DEFAULT_CONTEXT_PER_SEQUENCE,
  type ResolveModelOptions,
  type ResolvedModel,
} from './resolve-model.ts';
export {
  downloadFile,
  type DownloadFileOptions,
  type DownloadedFile,
  type DownloadProgress,
} from './model-download.ts';
export {
  downloadLocked,
  fileSha256,
  modelLockPath,
  pinStateOf,
  readModelLock,
  recordInModelLock,
  verifyLockedFile,
  MODEL_LOCK_FILE,
  type DownloadLockedOptions,
  type ModelLock,
  type ModelLockEntry,
  type PinState,
} from './model-lock.ts';
export { parseHfUri, hfHeaders, hfResolveUrl, resolveHfQuant, type HfFile, type HfAccess } from './hf-source.ts';
export { LockstepBarrier } from './lockstep-barrier.ts';
export { DecodeCounters } from './decode-counters.ts';
export * from './multimodal/index.ts';
export {
  engineThreadpoolSize,
  threadpoolShortfall,
  threadpoolSizeOf,
} from './threadpool-size.ts';
