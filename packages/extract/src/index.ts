export { extractFile, DEFAULT_EXTRACT_LIMITS, type ExtractLimits, type ExtractOptions } from './extract-file.ts';
export { sniffMediaType, type SniffedMedia, type MediaKind } from './sniff/sniff-media-type.ts';
export {
  ExtractionPool,
  defaultExtractionConcurrency,
  type ExtractionPoolOptions,
  type ExtractionPoolStats,
} from './pool/extraction-pool.ts';
