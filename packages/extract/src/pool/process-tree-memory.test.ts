import { spawn } from 'node:child_process';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { processTreeRssBytes, procfsAvailable } from './process-tree-memory.ts';

const MIB = 1024 * 1024;

describe.skipIf(!procfsAvailable())('processTreeRssBytes', () => {
  it('counts the memory of a grandchild (a tool started by the extraction process), not only the process itself', async () => {
    // A small shell whose child touches 150 MiB: what an extraction process running a greedy tool looks like.
    const grandchild = `${JSON.stringify(process.execPath)} -e "globalThis.b = Buffer.alloc(150 * 1024 * 1024, 1); setInterval(() => {}, 1000)"`;
    const shell = spawn('sh', ['-c', `${grandchild} & wait`], { stdio: 'ignore', detached: true });
    onTestFinished(() => {
      try {
        process.kill(-shell.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    });
    await vi.waitFor(() => expect(processTreeRssBytes(shell.pid!)).toBeGreaterThan(150 * MIB), {
      timeout: 30_000,
      interval: 50,
    });
    // Two levels up (this test process) the grandchild is still counted.
    expect(processTreeRssBytes(process.pid)).toBeGreaterThan(150 * MIB);
  });

  it('is undefined for a process that does not exist', () => {
    expect(processTreeRssBytes(2 ** 22 + 7)).toBeUndefined();
  });
});
