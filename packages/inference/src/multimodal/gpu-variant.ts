import type { BackendDeviceInfo, LibVariant } from './llama-node-binding.ts';

/** Which accelerator the engine may use: a named one, the first that works (`auto`), or none. */
export type GpuPreference = 'auto' | 'cuda' | 'vulkan' | false;

/** What probing one addon build found: whether it loads, and the devices it sees. */
export interface VariantProbe {
  available: boolean;
  devices: BackendDeviceInfo[];
}

export interface ChosenVariant {
  variant: LibVariant;
  /** The GPU the variant will use; undefined for the CPU build. */
  device: BackendDeviceInfo | undefined;
}

/** Raised when a GPU was asked for by name and cannot be used (never fall back to CPU silently). */
export class GpuUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuUnavailableError';
  }
}

/** ggml device types that are real accelerators (a `cpu` device is never one). */
const GPU_DEVICE_TYPES = new Set(['gpu', 'igpu']);

/** The first GPU among the devices a build reports, if any. */
export function findGpuDevice(devices: readonly BackendDeviceInfo[]): BackendDeviceInfo | undefined {
  return devices.find((device) => GPU_DEVICE_TYPES.has(device.type.toLowerCase()));
}

const WHY_NOT: Record<Exclude<LibVariant, 'default'>, string> = {
  cuda: 'the CUDA build of @fugood/llama.node needs libcudart.so.12, libcublas.so.12 and libnccl.so.2 on the library path and a GPU of compute capability 8.9 or newer',
  vulkan: 'the Vulkan build of @fugood/llama.node needs a Vulkan loader and driver that expose a GPU',
};

/**
 * Picks the addon build: `false` → CPU; `cuda`/`vulkan` → that build, or a `GpuUnavailableError`
 * when it does not load or sees no GPU; `auto` → CUDA, then Vulkan, then CPU.
 */
export async function chooseLibVariant(
  gpu: GpuPreference,
  probe: (variant: LibVariant) => Promise<VariantProbe>,
): Promise<ChosenVariant> {
  if (gpu === false) return { variant: 'default', device: undefined };
  const candidates: Array<Exclude<LibVariant, 'default'>> = gpu === 'auto' ? ['cuda', 'vulkan'] : [gpu];
  for (const variant of candidates) {
    const found = await probe(variant);
    const device = found.available ? findGpuDevice(found.devices) : undefined;
    if (device) return { variant, device };
    if (gpu !== 'auto') {
      const what = found.available ? 'loads but sees no GPU device' : 'cannot be loaded on this machine';
      throw new GpuUnavailableError(
        `gpu '${variant}' was requested, but the ${variant} build ${what}; ${WHY_NOT[variant]}. Set gpu to false to run on CPU on purpose.`,
      );
    }
  }
  return { variant: 'default', device: undefined };
}
