import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { tempDir } from '@gembatch/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { usableCores } from './usable-cores.ts';

async function cgroup(files: Record<string, string>): Promise<string> {
  const dir = await tempDir('gembatch-cgroup-');
  onTestFinished(() => dir.cleanup());
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir.path, name, '..'), { recursive: true });
    await writeFile(join(dir.path, name), content);
  }
  return dir.path;
}

describe('usableCores', () => {
  it('takes the scheduler count when there is no quota (v2 "max", v1 -1, or no cgroup files)', async () => {
    expect(usableCores(await cgroup({ 'cpu.max': 'max 100000\n' }))).toBe(availableParallelism());
    expect(usableCores(await cgroup({ 'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n' }))).toBe(
      availableParallelism(),
    );
    expect(usableCores(await cgroup({}))).toBe(availableParallelism());
  });

  it('lowers it to a container CPU quota, rounding a fraction up, never below 1', async () => {
    expect(usableCores(await cgroup({ 'cpu.max': '100000 100000\n' }))).toBe(1);
    expect(usableCores(await cgroup({ 'cpu.max': '50000 100000\n' }))).toBe(1);
    expect(usableCores(await cgroup({ 'cpu/cpu.cfs_quota_us': '150000\n', 'cpu/cpu.cfs_period_us': '100000\n' }))).toBe(
      Math.min(2, availableParallelism()),
    );
    // A quota above the host's cores changes nothing.
    expect(usableCores(await cgroup({ 'cpu.max': '100000000 100000\n' }))).toBe(availableParallelism());
  });
});
