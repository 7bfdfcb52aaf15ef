import { describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { planChunks, type ChunkTokenizer } from './plan-chunks.ts';

const range = (n: number) => Array.from({ length: n }, (_, i) => 1000 + i);

describe('planChunks over token ids', () => {
  it('keeps a short input in one chunk', () => {
    const chunks = planChunks(range(10), { maxTokens: 10, overlapTokens: 3 });
    expect(chunks).toEqual([{ index: 0, count: 1, start: 0, end: 10, tokens: range(10) }]);
  });

  it('covers every token, in order, with exactly the overlap between neighbours', () => {
    const input = range(1000);
    const chunks = planChunks(input, { maxTokens: 128, overlapTokens: 16 });
    expect(chunks[0]?.start).toBe(0);
    expect(chunks.at(-1)?.end).toBe(1000);
    for (const [i, chunk] of chunks.entries()) {
      expect(chunk.index).toBe(i);
      expect(chunk.count).toBe(chunks.length);
      expect(chunk.end - chunk.start).toBeLessThanOrEqual(128);
      expect(chunk.tokens).toEqual(input.slice(chunk.start, chunk.end));
      const next = chunks[i + 1];
      if (next) expect(chunk.end - next.start).toBe(16);
    }
    const seen = new Set(chunks.flatMap((c) => c.tokens));
    expect(seen.size).toBe(1000);
  });

  it('uses the fewest chunks and sizes them evenly (no runt at the end)', () => {
    const chunks = planChunks(range(1000), { maxTokens: 128, overlapTokens: 16 });
    // (1000 - 16) / (128 - 16) = 8.8 → 9 chunks.
    expect(chunks).toHaveLength(9);
    const sizes = chunks.map((c) => c.end - c.start);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('is deterministic', () => {
    const options = { maxTokens: 300, overlapTokens: 40 };
    expect(planChunks(range(5000), options)).toEqual(planChunks(range(5000), options));
  });

  it('moves a cut back to a preferred point near the even split, never past the overlap', () => {
    const lineEnds = new Set([95, 190]);
    const chunks = planChunks(range(300), {
      maxTokens: 110,
      overlapTokens: 10,
      cutPreference: (i) => (lineEnds.has(i) ? 2 : 0),
      snapTokens: 20,
    });
    expect(chunks[0]?.end).toBe(96);
    expect(chunks[1]?.start).toBe(86);
    expect(chunks.at(-1)?.end).toBe(300);
  });

  it('never cuts inside a character even without a preferred point', () => {
    const chunks = planChunks(range(200), {
      maxTokens: 100,
      overlapTokens: 0,
      cutPreference: (i) => (i === 99 ? -1 : 0),
      snapTokens: 0,
    });
    expect(chunks[0]?.end).toBe(99);
  });

  it('refuses an overlap as large as the chunk', () => {
    expect(() => planChunks(range(100), { maxTokens: 10, overlapTokens: 10 })).toThrow(GembatchError);
    try {
      planChunks(range(100), { maxTokens: 0 });
    } catch (error) {
      expect((error as GembatchError).code).toBe('GB_ERR_CONTEXT_OVERFLOW');
    }
  });
});

/** A whitespace tokenizer: one token per word, line breaks kept in the word. Pure logic only. */
function wordTokenizer(): ChunkTokenizer {
  const vocab: string[] = [];
  const ids = new Map<string, number>();
  return {
    tokenize: async (text) =>
      (text.match(/\S+\s*/g) ?? []).map((word) => {
        if (!ids.has(word)) {
          ids.set(word, vocab.length);
          vocab.push(word);
        }
        return ids.get(word) as number;
      }),
    detokenize: async (tokens) => tokens.map((t) => vocab[t]).join(''),
  };
}

describe('planChunks over text', () => {
  it('cuts at line ends near the split and rebuilds every word in order', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `line ${i} has five words\n`);
    const text = lines.join('');
    const chunks = await planChunks(text, { maxTokens: 50, overlapTokens: 5, engine: wordTokenizer() });
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks.slice(0, -1)) expect(chunk.text.endsWith('\n')).toBe(true);
    for (const chunk of chunks) expect(chunk.tokenCount).toBeLessThanOrEqual(50);
    const rebuilt = chunks
      .map((c, i) =>
        i === 0
          ? c.text
          : c.text
              .split(/(?<=\s)/)
              .slice(5)
              .join(''),
      )
      .join('');
    expect(rebuilt).toBe(text);
  });

  it('needs an engine that can tokenize', async () => {
    await expect(planChunks('text', { maxTokens: 5, engine: {} })).rejects.toThrow(/cannot tokenize/);
  });
});
