import { describe, expect, it } from 'vitest';
import { chooseLibVariant, findGpuDevice, GpuUnavailableError, type VariantProbe } from './gpu-variant.ts';
import type { LibVariant } from './llama-node-binding.ts';

const cpu = { backend: 'CPU', type: 'cpu', deviceName: 'CPU', maxMemorySize: 1 };
const h200 = { backend: 'CUDA', type: 'gpu', deviceName: 'NVIDIA H200', maxMemorySize: 150e9 };
const radeon = { backend: 'Vulkan', type: 'gpu', deviceName: 'AMD Radeon', maxMemorySize: 16e9 };

function probes(table: Partial<Record<LibVariant, VariantProbe>>) {
  const asked: LibVariant[] = [];
  const probe = async (variant: LibVariant) => {
    asked.push(variant);
    return table[variant] ?? { available: false, devices: [] };
  };
  return { probe, asked };
}

describe('findGpuDevice', () => {
  it('ignores CPU devices', () => {
    expect(findGpuDevice([cpu])).toBeUndefined();
    expect(findGpuDevice([cpu, h200])).toBe(h200);
  });
});

describe('chooseLibVariant', () => {
  it('uses the CPU build without probing when no GPU is wanted', async () => {
    const { probe, asked } = probes({});
    await expect(chooseLibVariant(false, probe)).resolves.toEqual({ variant: 'default', device: undefined });
    expect(asked).toEqual([]);
  });

  it('takes CUDA when it loads and sees a GPU', async () => {
    const { probe } = probes({ cuda: { available: true, devices: [cpu, h200] } });
    await expect(chooseLibVariant('cuda', probe)).resolves.toEqual({ variant: 'cuda', device: h200 });
  });

  it('refuses a named GPU build that cannot load, instead of falling back to CPU', async () => {
    const { probe } = probes({});
    await expect(chooseLibVariant('cuda', probe)).rejects.toThrow(GpuUnavailableError);
    await expect(chooseLibVariant('cuda', probe)).rejects.toThrow(/cannot be loaded.*libcudart/);
  });

  it('refuses a named GPU build that loads but sees only the CPU (a Vulkan build on a host with no Vulkan GPU)', async () => {
    const { probe } = probes({ vulkan: { available: true, devices: [cpu] } });
    await expect(chooseLibVariant('vulkan', probe)).rejects.toThrow(/loads but sees no GPU device/);
  });

  it('auto tries CUDA, then Vulkan, then settles for CPU', async () => {
    const vulkanOnly = probes({ vulkan: { available: true, devices: [radeon] } });
    await expect(chooseLibVariant('auto', vulkanOnly.probe)).resolves.toEqual({ variant: 'vulkan', device: radeon });
    expect(vulkanOnly.asked).toEqual(['cuda', 'vulkan']);
    const none = probes({ vulkan: { available: true, devices: [cpu] } });
    await expect(chooseLibVariant('auto', none.probe)).resolves.toEqual({ variant: 'default', device: undefined });
  });
});
