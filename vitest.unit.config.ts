import { defineConfig } from 'vitest/config';

/**
 * `pnpm test:unit`: the pure-logic tests beside the code (`src/**\/*.test.ts`, and the benchmarks' `bench/*.test.ts`): no Redis, no model,
 * no child process, so the whole set runs in seconds. Integration tests live in `test/` and run
 * with the full suite (`vitest.config.ts`).
 */
export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'bench/*.test.ts'],
    // Some of these import packages that load native addons (llama.cpp, sharp): child processes are safest.
    pool: 'forks',
    // Why 2: the suite must pass on a 2-core CI runner; more files at once only add contention.
    maxWorkers: 2,
    // Pure tests share no state through modules, so one module graph per worker is safe and spares re-imports.
    isolate: false,
    testTimeout: 10_000,
  },
});
