import { describe, expect, it } from 'vitest';
import { quantLabelFor } from './quant-label.ts';

describe('quantLabelFor', () => {
  it.each([
    ['/models/gemma-4-12b-it-Q4_K_M.gguf', 'Q4_K_M'],
    ['/models/gemma-4-12b-it-q8_0.gguf', 'Q8_0'],
    ['/models/gemma-4-12b-it.BF16.gguf', 'BF16'],
    ['/models/gemma-4-12b-it-IQ4_XS.gguf', 'IQ4_XS'],
    ['/models/gemma-4-12b-it-qat-Q4_0.gguf', 'Q4_0'],
  ])('reads %s from the file name', (file, label) => {
    expect(quantLabelFor(file, 'gemma4 12B all F32')).toBe(label);
  });

  it.each([
    ['gemma4 ?B (guessed) all F32', 'F32'],
    ['llama 7B Q4_K - Medium', 'Q4_K_M'],
    ['llama 7B Q3_K - Small', 'Q3_K_S'],
    ['gemma4 12B Q8_0', 'Q8_0'],
    ['llama 7B IQ2_XXS - 2.0625 bpw', 'IQ2_XXS'],
  ])('falls back to the description %s', (description, label) => {
    expect(quantLabelFor('/models/tiny-gemma4u.gguf', description)).toBe(label);
  });

  it('says unknown when nothing names a quantization', () => {
    expect(quantLabelFor('/models/model.gguf', 'custom thing')).toBe('unknown');
  });
});
