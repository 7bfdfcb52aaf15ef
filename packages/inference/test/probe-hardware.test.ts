import { describe, expect, it } from 'vitest';
import { probeHardware } from '../src/index.ts';

describe('probeHardware', () => {
  it('reports the CPU backend, RAM and cores, and plans with available RAM', async () => {
    const hw = await probeHardware({ gpu: false });
    expect(hw.accelerator).toBe('cpu');
    expect(hw.gpuNames).toEqual([]);
    expect(hw.memoryKind).toBe('ram');
    expect(hw.memoryBytes).toBeGreaterThan(0);
    expect(hw.memoryBytes).toBeLessThanOrEqual(hw.ramTotalBytes);
    expect(hw.cpuCores).toBeGreaterThanOrEqual(1);
    expect(hw.recommendedThreads).toBeGreaterThanOrEqual(1);
    expect(hw.recommendedThreads).toBeLessThanOrEqual(hw.cpuMathCores);
    expect(hw.memoryOverridden).toBe(false);
  });

  it('GEMBATCH_VRAM_BYTES (vramOverrideBytes) replaces the probed amount', async () => {
    const hw = await probeHardware({ gpu: false, vramOverrideBytes: 24 * 1024 ** 3 });
    expect(hw.memoryBytes).toBe(24 * 1024 ** 3);
    expect(hw.memoryOverridden).toBe(true);
  });

  it('a GPU backend with no binary or device fails fast with GB_ERR_MODEL_LOAD instead of compiling', async (context) => {
    if ((await probeHardware()).accelerator !== 'cpu') return context.skip('this machine has a usable GPU backend');
    await expect(probeHardware({ gpu: 'cuda' })).rejects.toMatchObject({ code: 'GB_ERR_MODEL_LOAD' });
  });
});
