import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from '@gembatch/testing';
import { readInputLines, type InputLine } from './input-lines.ts';

async function lines(path: string, options = {}): Promise<InputLine[]> {
  const out: InputLine[] = [];
  for await (const line of readInputLines(path, options)) out.push(line);
  return out;
}

describe('readInputLines', () => {
  it('skips blank lines, strips CRLF, keeps physical line numbers, and resumes at any cursor it reported', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const path = join(dir.path, 'in.jsonl');
    // Multi-byte characters make byte offsets differ from string offsets.
    await writeFile(path, '{"a":"é"}\r\n\n{"b":"日本"}\n   \n{"c":3}');
    const all = await lines(path);
    expect(all.map((l) => [l.index, l.lineNumber, l.text])).toEqual([
      [0, 1, '{"a":"é"}'],
      [1, 3, '{"b":"日本"}'],
      [2, 5, '{"c":3}'],
    ]);
    for (const [i, line] of all.entries()) {
      const rest = await lines(path, {
        startByte: line.nextByte,
        startIndex: line.index + 1,
        startLineNumber: line.lineNumber + 1,
      });
      expect(rest).toEqual(all.slice(i + 1));
    }
  });

  it('reads lines split across many read chunks', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const path = join(dir.path, 'big.jsonl');
    // Lines longer than the 1 MiB read chunk, so a line spans chunks.
    const long = 'x'.repeat(1_500_000);
    await writeFile(path, `"${long}"\n"short"\n"${long}"\n`);
    const all = await lines(path);
    expect(all.map((l) => l.text.length)).toEqual([long.length + 2, 7, long.length + 2]);
    expect(all.at(-1)?.nextByte).toBe(2 * (long.length + 3) + 8);
  });
});
