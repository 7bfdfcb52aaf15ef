export { createLlamaNodeEngine, LlamaNodeEngine, type LlamaNodeEngineOptions } from './llama-node-engine.ts';
export type { GpuPreference } from './gpu-variant.ts';
