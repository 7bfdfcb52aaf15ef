import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/**
 * Cores this process may really use: the scheduler's count (`availableParallelism`, which sees
 * CPU affinity), lowered to the cgroup CPU quota when there is one — in a container limited to
 * 4 CPUs on a 64-core host, Node still reports 64. Reads cgroup v2 (`cpu.max`) and v1
 * (`cpu.cfs_quota_us` / `cpu.cfs_period_us`); a quota of 2.5 CPUs counts as 3. `cgroupRoot` is for
 * tests. Defaults to `/sys/fs/cgroup`.
 */
export function usableCores(cgroupRoot = '/sys/fs/cgroup'): number {
  const scheduled = availableParallelism();
  const quota = cgroupCpuQuota(cgroupRoot);
  return quota === undefined ? scheduled : Math.max(1, Math.min(scheduled, Math.ceil(quota)));
}

function cgroupCpuQuota(root: string): number | undefined {
  const v2 = readText(join(root, 'cpu.max'));
  if (v2 !== undefined) {
    const [quota, period] = v2.trim().split(/\s+/);
    return quota === 'max' ? undefined : ratio(quota, period);
  }
  const quota = readText(join(root, 'cpu', 'cpu.cfs_quota_us'));
  const period = readText(join(root, 'cpu', 'cpu.cfs_period_us'));
  // v1 writes -1 for "no quota".
  return quota === undefined || quota.trim() === '-1' ? undefined : ratio(quota.trim(), period?.trim());
}

function ratio(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? q / p : undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
