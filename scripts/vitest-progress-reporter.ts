import { appendFileSync } from 'node:fs';
import type { Reporter, TestCase, TestModule, TestSpecification } from 'vitest/node';

/**
 * Vitest reporter for `scripts/vitest-watchdog.ts`: appends one JSON line per event to the file named by
 * `GEMBATCH_VITEST_PROGRESS` (the files planned, every finished test, every finished file and its
 * state), so the watchdog can see that the run still moves and which files never reported.
 */
export default class ProgressReporter implements Reporter {
  readonly #file = process.env.GEMBATCH_VITEST_PROGRESS;

  #write(event: Record<string, unknown>): void {
    if (this.#file) appendFileSync(this.#file, `${JSON.stringify(event)}\n`);
  }

  onTestRunStart(specifications: ReadonlyArray<TestSpecification>): void {
    this.#write({ planned: [...new Set(specifications.map((s) => s.moduleId))] });
  }

  onTestCaseResult(testCase: TestCase): void {
    this.#write({ test: testCase.module.moduleId });
  }

  onTestModuleEnd(testModule: TestModule): void {
    this.#write({ module: testModule.moduleId, state: testModule.state() });
  }
}
