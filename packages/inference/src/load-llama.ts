import { getLlama, LlamaLogLevel, NoBinaryFoundError, type Llama } from 'node-llama-cpp';
import { GembatchError, errorMessage, type Accelerator } from '@gembatch/contracts';
import type { Logger } from '@gembatch/telemetry';

/** Which llama.cpp backend to load: `auto` tries CUDA, Metal, Vulkan, then CPU. */
export type GpuOption = 'auto' | 'cuda' | 'metal' | 'vulkan' | false;

export interface LoadLlamaOptions {
  /** Backend. Defaults to `auto`. */
  gpu?: GpuOption;
  /** Where llama.cpp's own log lines go (they carry no document content). Defaults to nowhere. */
  logger?: Logger;
}

/**
 * Loads llama.cpp through node-llama-cpp with `build: "never"`: a missing prebuilt binary fails
 * at once with `GB_ERR_MODEL_LOAD` and a readable message, instead of compiling llama.cpp.
 */
export async function loadLlama(options: LoadLlamaOptions = {}): Promise<Llama> {
  const gpu = options.gpu ?? 'auto';
  const log = options.logger;
  try {
    const llama = await getLlama({
      gpu,
      build: 'never',
      // The "falling back to no GPU" notice goes to our log below, not to stderr.
      progressLogs: false,
      logLevel: log ? LlamaLogLevel.warn : LlamaLogLevel.error,
      logger: (level, message) => {
        const line = message.trimEnd();
        if (!log || line === '') return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) log.error({ source: 'llama.cpp' }, line);
        else if (level === LlamaLogLevel.warn) log.warn({ source: 'llama.cpp' }, line);
        else log.debug({ source: 'llama.cpp' }, line);
      },
    });
    if (gpu === 'auto' && llama.gpu === false) log?.info({ gpu }, 'no usable GPU backend; running on the CPU');
    return llama;
  } catch (error) {
    if (error instanceof NoBinaryFoundError) {
      throw new GembatchError(
        'GB_ERR_MODEL_LOAD',
        `no prebuilt llama.cpp binary for gpu=${String(gpu)} on ${process.platform}-${process.arch}: install the GPU runtime it needs (CUDA 12/13 with cuBLAS, or Vulkan) or run with the CPU backend (GEMBATCH_GPU=cpu)`,
        { cause: error },
      );
    }
    throw new GembatchError('GB_ERR_MODEL_LOAD', `llama.cpp could not be loaded: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

/**
 * Threads for decoding. On CPU: one per math core left once Node's own thread is busy (on a
 * 2-core machine that is 1; node-llama-cpp's default of 4 there is 100× slower, measured). On a
 * GPU the CPU only feeds it: node-llama-cpp's math-core count.
 */
export function defaultThreads(accelerator: Accelerator, cpuMathCores: number): number {
  if (accelerator === 'cpu') return Math.max(1, cpuMathCores - 1);
  return Math.max(1, cpuMathCores);
}

/** Our name for a node-llama-cpp backend. */
export function acceleratorOf(llama: Pick<Llama, 'gpu'>): Accelerator {
  return llama.gpu === false ? 'cpu' : llama.gpu;
}
