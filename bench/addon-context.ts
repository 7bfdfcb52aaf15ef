import type { LlamaContext } from 'node-llama-cpp';

/**
 * node-llama-cpp's native context, as far as the benchmarks that decode on it directly use it
 * (`bench:decode-loop`, `bench:decode-shapes`): internals of 3.21.1, which their tests run on the
 * tiny model so that an upgrade moving them fails in the suite.
 */
export interface AddonContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstTokenIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(batchLogitIndex: number, sampler: AddonSampler): Promise<number>;
  disposeSequence(sequenceId: number): boolean;
  removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
}

/** node-llama-cpp's native sampler (internals of 3.21.1). */
export interface AddonSampler {
  applyConfig(config: object): void;
  dispose(): void;
}

/** The native context behind `context`. */
export function addonContextOf(context: LlamaContext): AddonContext {
  return (context as unknown as { _ctx: AddonContext })._ctx;
}
