import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Where `make chaos` collects one line per scenario; the Makefile clears it before the run and prints
 * it after, so the figures stand together at the end of the output instead of inside Vitest's.
 * Defaults to `.gembatch/chaos-report.txt` at the repository root.
 */
const CHAOS_REPORT_PATH = resolve(process.env.GEMBATCH_CHAOS_REPORT ?? '.gembatch/chaos-report.txt');

/**
 * Records one scenario's outcome as a line, e.g.
 * `kill -9 worker mid-run: 150/150 completed, 0 failed, 0 lost, recovered in 14 s`.
 * Call it after the scenario's assertions passed, so a printed line always means a passed scenario.
 */
export function reportScenario(scenario: string, figures: string): void {
  mkdirSync(dirname(CHAOS_REPORT_PATH), { recursive: true });
  appendFileSync(CHAOS_REPORT_PATH, `${scenario}: ${figures}\n`);
}
