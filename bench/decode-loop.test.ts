import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./decode-loop-bench.ts', import.meta.url));

describe('bench:decode-loop', () => {
  // The loop drives node-llama-cpp's native addon through internals of 3.21.1: an upgrade that moves
  // them must fail here, not leave the benchmark broken until someone runs it.
  it("runs the engine, node-llama-cpp's evaluation and the addon loop on a tiny model and reports each", {
    timeout: 120_000,
  }, async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', script, '--model', 'tiny', '--sequences', '2', '--tokens', '8', '--rounds', '1', '--json'],
      { timeout: 110_000 },
    );
    const rows = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { bench: string; target: string; round: number; tok_s: number });
    expect(rows.map((r) => [r.bench, r.target, r.round])).toEqual([
      ['decode-loop', 'engine', 1],
      ['decode-loop', 'evaluate', 1],
      ['decode-loop', 'loop', 1],
    ]);
    for (const r of rows) expect(r.tok_s).toBeGreaterThan(0);
  });
});
