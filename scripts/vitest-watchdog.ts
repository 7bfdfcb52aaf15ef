/**
 * `pnpm test`: `vitest run` with a bound on silence. Vitest has hung here about once in six full runs
 * (every file but one reported, its main process and a fork idle at load 0 for 20+ minutes, the file
 * passing alone in a second), which would hold CI until its 90-minute limit. When no test has
 * finished for `GEMBATCH_TEST_STALL_MS` (default 10 minutes; no test or hook here may take half
 * that), the run is killed with its process group, the files that never reported are named, and
 * they are run once more. A file that failed is never run again, and a second stall fails the run.
 *
 *   tsx scripts/vitest-watchdog.ts [vitest run arguments...]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const STALL_MS = Number(process.env.GEMBATCH_TEST_STALL_MS ?? 600_000);
/** How often the progress file is looked at: a few times within the stall limit, at most every 5 s. */
const POLL_MS = Math.min(5_000, STALL_MS / 4);
const repoRoot = join(import.meta.dirname, '..');
const vitest = join(repoRoot, 'node_modules', '.bin', 'vitest');
const reporter = join(import.meta.dirname, 'vitest-progress-reporter.ts');

interface RunOutcome {
  code: number;
  stalled: boolean;
  planned: string[];
  states: Map<string, string>;
}

let current: ReturnType<typeof spawn> | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    if (current?.pid) process.kill(-current.pid, 'SIGKILL');
    process.exit(130);
  });

async function runOnce(args: readonly string[]): Promise<RunOutcome> {
  const dir = mkdtempSync(join(tmpdir(), 'gembatch-vitest-'));
  const progress = join(dir, 'progress.jsonl');
  try {
    const child = spawn(vitest, ['run', ...args, '--reporter=default', `--reporter=${reporter}`], {
      cwd: repoRoot,
      stdio: 'inherit',
      detached: true, // its own process group: a kill reaches the forks and what they started
      env: { ...process.env, GEMBATCH_VITEST_PROGRESS: progress },
    });
    current = child;
    let stalled = false;
    let lastSize = -1;
    let lastChange = Date.now();
    const watch = setInterval(() => {
      const size = existsSync(progress) ? statSync(progress).size : 0;
      if (size !== lastSize) {
        lastSize = size;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > STALL_MS && child.pid) {
        stalled = true;
        process.stderr.write(`\nvitest-watchdog: no test finished for ${STALL_MS / 1000} s; killing the run\n`);
        process.kill(-child.pid, 'SIGKILL');
      }
    }, POLL_MS);
    const code = await new Promise<number>((resolve) => child.on('exit', (exitCode) => resolve(exitCode ?? 1)));
    clearInterval(watch);
    current = undefined;
    const planned: string[] = [];
    const states = new Map<string, string>();
    const lines = existsSync(progress) ? readFileSync(progress, 'utf8').split('\n') : [];
    for (const line of lines) {
      if (line === '') continue;
      const event = JSON.parse(line) as { planned?: string[]; module?: string; state?: string };
      if (event.planned) planned.push(...event.planned);
      if (event.module) states.set(event.module, event.state ?? 'unknown');
    }
    return { code, stalled, planned, states };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
const first = await runOnce(args);
if (!first.stalled) process.exit(first.code);

const failed = [...first.states].filter(([, state]) => state === 'failed').map(([file]) => relative(repoRoot, file));
const unreported = first.planned.filter((file) => !first.states.has(file)).map((file) => relative(repoRoot, file));
process.stderr.write(
  `vitest-watchdog: ${first.states.size} of ${first.planned.length} files had reported (${failed.length} failed); never reported: ${unreported.join(', ') || 'none'}\n`,
);
if (unreported.length === 0) process.exit(failed.length > 0 ? 1 : 0);
process.stderr.write('vitest-watchdog: running the files that never reported once more\n');
// With file filters in `args`, the rerun covers their files again (vitest runs what any filter matches).
const second = await runOnce([...args, ...unreported]);
if (second.stalled) process.stderr.write('vitest-watchdog: the rerun stalled too; failing\n');
process.exit(failed.length > 0 || second.stalled ? 1 : second.code);
