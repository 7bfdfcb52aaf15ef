import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'services/*/src/**/*.test.ts',
      'services/*/test/**/*.test.ts',
      'scripts/*.test.ts',
      'bench/*.test.ts',
    ],
    // Native addons (llama.cpp, sharp) are safest in child processes, not worker threads.
    pool: 'forks',
    // Why 2: the suite must pass on a 2-core CI runner; more files at once only thrash the CPU that model tests need.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
