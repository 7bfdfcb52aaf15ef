import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

  // Perl forks without exec (Node cannot): the state an extraction process's child is in between libuv's fork and the tool's exec.
  const perlAvailable = spawnSync('perl', ['-e', '1']).status === 0;

  it.skipIf(!perlAvailable)(
    "counts a fork that has not exec'd yet by its own pages only, not the parent's pages it shares copy-on-write",
    async () => {
      const perl = forkingPerl(150, 0);
      onTestFinished(() => {
        perl.kill('SIGKILL');
      });
      const fork = await vi.waitFor(
        () => {
          const [child] = readFileSync(`/proc/${perl.pid}/task/${perl.pid}/children`, 'latin1').split(' ');
          expect(child).toBeTruthy();
          return Number(child);
        },
        { timeout: 30_000, interval: 50 },
      );
      // The fault this guards against: the fork's VmRSS repeats the parent's 150 MiB.
      await vi.waitFor(() => expect(vmRssBytes(fork)).toBeGreaterThan(150 * MIB), { timeout: 30_000, interval: 50 });
      expect(vmRssBytes(perl.pid!)).toBeGreaterThan(150 * MIB);
      const tree = processTreeRssBytes(perl.pid!)!;
      expect(tree).toBeGreaterThan(150 * MIB);
      expect(tree).toBeLessThan(200 * MIB);
    },
  );

  it.skipIf(!perlAvailable)('still counts what a fork writes after forking', async () => {
    const perl = forkingPerl(150, 100);
    onTestFinished(() => {
      perl.kill('SIGKILL');
    });
    await vi.waitFor(() => expect(processTreeRssBytes(perl.pid!)).toBeGreaterThan(250 * MIB), {
      timeout: 30_000,
      interval: 50,
    });
  });

  it('is undefined for a process that does not exist', () => {
    expect(processTreeRssBytes(2 ** 22 + 7)).toBeUndefined();
  });
});

/** A perl process that touches `parentMib`, forks, and whose fork then touches `forkMib` of its own; both sleep. */
function forkingPerl(parentMib: number, forkMib: number) {
  // Appended 1 MiB at a time: `"x" x N` would build the string twice.
  const script = `$a .= "x" x 1048576 for 1..${parentMib}; if (!fork()) { $b .= "y" x 1048576 for 1..${forkMib}; } sleep 60;`;
  return spawn('perl', ['-e', script], { stdio: 'ignore' });
}

function vmRssBytes(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? 0) * 1024;
}
