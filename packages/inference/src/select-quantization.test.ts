import { describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { GEMMA4_12B_CATALOG } from './model-catalog.ts';
import { defaultMaxSequences } from './resolve-model.ts';
import { assessQuantizations, selectQuantization, type SelectQuantizationInput } from './select-quantization.ts';

const GiB = 1024 ** 3;
/** The worker's defaults: up to 16 sequences of 8192 tokens. */
const base = {
  sequences: 16,
  contextPerSequence: 8192,
  catalog: GEMMA4_12B_CATALOG,
} satisfies Partial<SelectQuantizationInput>;

describe('selectQuantization reproduces the published Gemma 4 12B tiers', () => {
  it('8 GB → QAT Q4_0 with a short context', () => {
    const choice = selectQuantization({ ...base, memoryBytes: 8 * GiB });
    expect(choice.quant).toBe('Q4_0_QAT');
    expect(choice.offload).toBe('full');
    expect(choice.contextPerSequence).toBeLessThan(8192);
    expect(choice.contextPerSequence).toBeGreaterThanOrEqual(1024);
    expect(choice.requiredBytes).toBeLessThanOrEqual(choice.budgetBytes);
  });

  it('12 GB → a Q4 variant', () => {
    const choice = selectQuantization({ ...base, memoryBytes: 12 * GiB });
    expect(choice.quant).toMatch(/^Q4/);
    expect(choice.contextPerSequence).toBe(8192);
    expect(choice.sequences).toBeGreaterThanOrEqual(1);
  });

  it('16 GB → Q8_0', () => {
    const choice = selectQuantization({ ...base, memoryBytes: 16 * GiB });
    expect(choice.quant).toBe('Q8_0');
    expect(choice.gpuLayers).toBe('max');
    expect(choice.contextPerSequence).toBe(8192);
  });

  it('24 GB → Q8_0 with more sequences than 16 GB', () => {
    const at16 = selectQuantization({ ...base, memoryBytes: 16 * GiB });
    const at24 = selectQuantization({ ...base, memoryBytes: 24 * GiB });
    expect(at24.quant).toBe('Q8_0');
    expect(at24.sequences).toBeGreaterThan(at16.sequences);
    expect(at24.reason).toMatch(/Q8_0/);
  });

  it('32 GB → BF16', () => {
    const choice = selectQuantization({ ...base, memoryBytes: 32 * GiB });
    expect(choice.quant).toBe('BF16');
    expect(choice.sequences).toBeGreaterThanOrEqual(1);
  });

  it('24 GB of Apple unified memory → Q8_0 (about two thirds is the GPU budget)', () => {
    const choice = selectQuantization({ ...base, memoryBytes: 24 * GiB, memoryKind: 'unified' });
    expect(choice.quant).toBe('Q8_0');
    expect(choice.budgetBytes).toBeCloseTo(16 * GiB, -6);
    expect(choice.memoryKind).toBe('unified');
  });

  it('16 GB of Apple unified memory is tight: a Q4 variant', () => {
    expect(selectQuantization({ ...base, memoryBytes: 16 * GiB, memoryKind: 'unified' }).quant).toMatch(/^Q4/);
  });
});

describe('selectQuantization on other hardware', () => {
  it('CPU-only: the same rule on the RAM budget, no GPU layers', () => {
    const choice = selectQuantization({ ...base, memoryBytes: 16 * GiB, memoryKind: 'ram' });
    expect(choice.quant).toBe('Q8_0');
    expect(choice.offload).toBe('cpu');
    expect(choice.gpuLayers).toBe(0);
  });

  it('a small GPU with enough RAM: the best partial offload', () => {
    const choice = selectQuantization({ ...base, memoryBytes: 4 * GiB, ramBytes: 32 * GiB });
    expect(choice.offload).toBe('partial');
    expect(choice.quant).toBe('Q4_0_QAT');
    expect(typeof choice.gpuLayers).toBe('number');
    expect(choice.gpuLayers as number).toBeGreaterThan(0);
    expect(choice.gpuLayers as number).toBeLessThan(GEMMA4_12B_CATALOG.architecture.layers);
  });

  it('nothing fits → GB_ERR_MODEL_LOAD naming the smallest need', () => {
    const attempt = () => selectQuantization({ ...base, memoryBytes: 2 * GiB, ramBytes: 2 * GiB });
    expect(attempt).toThrow(GembatchError);
    try {
      attempt();
    } catch (error) {
      expect((error as GembatchError).code).toBe('GB_ERR_MODEL_LOAD');
      expect((error as GembatchError).message).toMatch(/no quantization .* fits/);
    }
  });

  it('with the GPU default cap (128), an 80 GB card plans past 50 sequences and a 141 GB H200 past 100', () => {
    const gpu = { ...base, sequences: defaultMaxSequences('vram'), memoryKind: 'vram' as const };
    expect(defaultMaxSequences('ram')).toBe(16);
    expect(selectQuantization({ ...gpu, memoryBytes: 80 * GiB }).sequences).toBeGreaterThan(50);
    const h200 = selectQuantization({ ...gpu, memoryBytes: 141 * GiB });
    expect(h200.quant).toBe('BF16');
    expect(h200.sequences).toBeGreaterThan(100);
    expect(h200.sequences).toBeLessThanOrEqual(128);
  });

  it('sequences never exceed the configured cap', () => {
    expect(selectQuantization({ ...base, sequences: 2, memoryBytes: 80 * GiB }).sequences).toBe(2);
  });

  it('a context beyond the model training context is capped', () => {
    const arch = { ...GEMMA4_12B_CATALOG.architecture, trainContext: 4096 };
    expect(selectQuantization({ ...base, memoryBytes: 24 * GiB, modelArchitecture: arch }).contextPerSequence).toBe(
      4096,
    );
  });

  it('an operator can force a quant; an unknown one is a config error', () => {
    expect(selectQuantization({ ...base, memoryBytes: 24 * GiB, quant: 'Q4_K_M' }).quant).toBe('Q4_K_M');
    expect(() => selectQuantization({ ...base, memoryBytes: 24 * GiB, quant: 'Q3_XS' })).toThrow(
      /unknown quantization/,
    );
  });

  it('is deterministic and pure', () => {
    const input = { ...base, memoryBytes: 20 * GiB };
    expect(selectQuantization(input)).toEqual(selectQuantization(input));
  });
});

describe('assessQuantizations', () => {
  it('lists every entry best first with how it fits', () => {
    const rows = assessQuantizations({ ...base, memoryBytes: 16 * GiB });
    expect(rows.map((r) => r.entry.quant)).toEqual(['BF16', 'Q8_0', 'Q4_0_QAT', 'Q6_K', 'Q5_K_M', 'Q4_K_M']);
    expect(rows.find((r) => r.entry.quant === 'BF16')?.fit).toBe('no');
    expect(rows.find((r) => r.entry.quant === 'Q8_0')?.fit).toBe('full');
  });
});
