import { describe, expect, test } from 'vitest';
import { buildLlamaVocab, SPM_SPACE } from './llama-vocab.ts';
import { TOKEN_TYPE } from './ggml-types.ts';

describe('buildLlamaVocab', () => {
  test('has the fixed layout: specials, 256 byte tokens, then word pieces', () => {
    const vocab = buildLlamaVocab({ size: 1024 });
    expect(vocab.tokens.length).toBe(1024);
    expect(new Set(vocab.tokens).size).toBe(1024);
    expect(vocab.tokens.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    expect([...vocab.types.slice(0, 3)]).toEqual([TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control]);
    expect(vocab.tokens[3]).toBe('<0x00>');
    expect(vocab.tokens[258]).toBe('<0xFF>');
    expect([...vocab.types.slice(3, 259)].every((type) => type === TOKEN_TYPE.byte)).toBe(true);
    for (const piece of [`${SPM_SPACE}t`, `${SPM_SPACE}th`, `${SPM_SPACE}the`, `${SPM_SPACE}patient`, 'ing'])
      expect(vocab.tokens).toContain(piece);
  });

  test('puts control tokens right after the bytes', () => {
    const vocab = buildLlamaVocab({ size: 600, controlTokens: ['<start_of_turn>', '<end_of_turn>'] });
    expect(vocab.tokens.slice(259, 261)).toEqual(['<start_of_turn>', '<end_of_turn>']);
    expect(vocab.types[259]).toBe(TOKEN_TYPE.control);
  });

  test('frequent words score higher than rarer ones', () => {
    const vocab = buildLlamaVocab({ size: 1024 });
    const score = (token: string) => vocab.scores[vocab.tokens.indexOf(token)] ?? Number.NaN;
    expect(score(`${SPM_SPACE}the`)).toBeGreaterThan(score(`${SPM_SPACE}patient`));
  });

  test('fills a large vocabulary with unused tokens', () => {
    const vocab = buildLlamaVocab({ size: 8000 });
    expect(vocab.tokens.length).toBe(8000);
    expect(vocab.tokens.at(-1)).toMatch(/^<unused\d+>$/);
    expect(vocab.types.at(-1)).toBe(TOKEN_TYPE.unused);
  });

  test('refuses a size below the fixed part', () => {
    expect(() => buildLlamaVocab({ size: 300 })).toThrow(expect.objectContaining({ code: 'GB_ERR_BAD_REQUEST' }));
  });
});
