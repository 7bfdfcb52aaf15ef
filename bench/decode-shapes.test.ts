import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./decode-shapes-bench.ts', import.meta.url));

describe('bench:decode-shapes', () => {
  // The decodes go through internals of node-llama-cpp 3.21.1 (`context._ctx`): an upgrade that moves
  // them must fail here, not leave the benchmark broken until someone runs it.
  it('decodes every batch shape on a tiny model and reports each', { timeout: 120_000 }, async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', script, '--model', 'tiny', '--sequences', '4', '--history', '8', '--rounds', '1', '--json'],
      { timeout: 110_000 },
    );
    const rows = stdout
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as { bench: string; shape: string; tokens: number; median_ms: number; vs_step: number },
      );
    expect(rows.map((r) => [r.shape, r.tokens])).toEqual([
      ['step 4×1', 4],
      ['step + chunk 8', 11],
      ['step + chunk 32', 35],
      ['step + chunk 64', 67],
      ['step + 2 chunks of 16', 34],
      ['prompts 2×32, consecutive ids', 64],
      ['prompts 2, lengths 32 ± 1', 64],
      ['prompts 2×32, every other id', 64],
      ['prompt 1×64', 64],
      ['prompt 1×32', 32],
      ['prompt 1×1', 1],
    ]);
    for (const r of rows) {
      expect(r.bench).toBe('decode-shapes');
      expect(r.median_ms).toBeGreaterThan(0);
    }
    expect(rows[0]?.vs_step).toBe(1);
  });
});
