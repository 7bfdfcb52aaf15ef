import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repoRoot = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'gembatch-watchdog-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the watchdog on the stall fixture with a 3 s stall limit; resolves its exit code and stderr. */
function runWatchdog(mode: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(
    join(repoRoot, 'node_modules', '.bin', 'tsx'),
    ['scripts/vitest-watchdog.ts', '--config', 'scripts/fixtures/watchdog/vitest.config.ts'],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        GEMBATCH_TEST_STALL_MS: '3000',
        WATCHDOG_FIXTURE: mode,
        WATCHDOG_FIXTURE_MARKER: join(dir, `${mode}-${Date.now()}`),
      },
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

describe('vitest-watchdog (scripts/vitest-watchdog.ts)', () => {
  it('a run that stalls once is killed, the file that never reported is named and passes on its rerun', async () => {
    const { code, stderr } = await runWatchdog('stall-once');
    expect(stderr).toMatch(/no test finished for 3 s; killing the run/);
    expect(stderr).toMatch(/0 of 1 files had reported \(0 failed\); never reported: .*stall\.fixture\.ts/);
    expect(stderr).toMatch(/running the files that never reported once more/);
    expect(code).toBe(0);
  }, 60_000);

  it('a file that stalls every time fails the run after its rerun stalls too', async () => {
    const { code, stderr } = await runWatchdog('stall');
    expect(stderr).toMatch(/the rerun stalled too; failing/);
    expect(code).toBe(1);
  }, 60_000);

  it('an ordinary failure fails the run at once and is never rerun', async () => {
    const { code, stderr } = await runWatchdog('fail');
    expect(stderr).not.toMatch(/vitest-watchdog/);
    expect(code).toBe(1);
  }, 60_000);
});
