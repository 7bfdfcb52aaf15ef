import os from 'node:os';
import type { Accelerator } from '@gembatch/contracts';
import type { MemoryKind } from './select-quantization.ts';
import { acceleratorOf, defaultThreads, loadLlama, type GpuOption } from './load-llama.ts';

/** What a node has to run a model on. */
export interface HardwareInfo {
  accelerator: Accelerator;
  /** GPU device names (empty on CPU). */
  gpuNames: string[];
  vramTotalBytes: number;
  vramFreeBytes: number;
  /** Apple Silicon and other SoCs: the GPU shares system memory. */
  unifiedMemory: boolean;
  ramTotalBytes: number;
  ramFreeBytes: number;
  /** Logical CPUs. */
  cpuCores: number;
  /** Cores llama.cpp counts for math (physical performance cores). */
  cpuMathCores: number;
  /** Memory to plan the model with (`selectQuantization`'s `memoryBytes`). */
  memoryBytes: number;
  memoryKind: MemoryKind;
  /** Whether `memoryBytes` came from the operator (`GEMBATCH_VRAM_BYTES`) rather than the probe. */
  memoryOverridden: boolean;
  /** Decode threads this node should use. */
  recommendedThreads: number;
}

export interface ProbeHardwareOptions {
  /** Plan with this much accelerator memory instead of the probed amount (`GEMBATCH_VRAM_BYTES`). Defaults to the probe. */
  vramOverrideBytes?: number;
  /** Backend to probe. Defaults to `auto`. */
  gpu?: GpuOption;
}

/**
 * Probes the accelerator (kind, device names, total and free VRAM; unified memory counts as VRAM),
 * RAM and cores, through the same llama.cpp binary the engine will load (never compiling one).
 * A GPU node plans with its free VRAM, an Apple Silicon node with its unified memory, a CPU node
 * with its available RAM; `vramOverrideBytes` replaces that number.
 */
export async function probeHardware(options: ProbeHardwareOptions = {}): Promise<HardwareInfo> {
  const llama = await loadLlama({ gpu: options.gpu ?? 'auto' });
  try {
    const accelerator = acceleratorOf(llama);
    const [vram, ram, gpuNames] = await Promise.all([
      llama.getVramState(),
      llama.getRamState(),
      llama.getGpuDeviceNames(),
    ]);
    const unifiedMemory = accelerator !== 'cpu' && vram.unifiedSize > 0;
    const cpuMathCores = llama.cpuMathCores;
    let memoryBytes: number;
    let memoryKind: MemoryKind;
    if (accelerator === 'cpu') {
      memoryBytes = ram.free;
      memoryKind = 'ram';
    } else if (unifiedMemory) {
      memoryBytes = ram.total;
      memoryKind = 'unified';
    } else {
      memoryBytes = vram.free;
      memoryKind = 'vram';
    }
    const overridden = options.vramOverrideBytes !== undefined && options.vramOverrideBytes > 0;
    return {
      accelerator,
      gpuNames,
      vramTotalBytes: vram.total,
      vramFreeBytes: vram.free,
      unifiedMemory,
      ramTotalBytes: ram.total,
      ramFreeBytes: ram.free,
      cpuCores: os.availableParallelism(),
      cpuMathCores,
      memoryBytes: overridden ? (options.vramOverrideBytes as number) : memoryBytes,
      memoryKind: overridden && accelerator !== 'cpu' ? 'vram' : memoryKind,
      memoryOverridden: overridden,
      recommendedThreads: defaultThreads(accelerator, cpuMathCores),
    };
  } finally {
    await llama.dispose();
  }
}
