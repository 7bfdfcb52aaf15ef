import { defineConfig } from 'vitest/config';

/**
 * `make chaos`: fault-injection scenarios against real processes (kill -9, Redis restarts, SIGTERM,
 * hostile inputs). One file at a time: each scenario measures recovery and event-loop lag, which
 * another scenario's load on the same cores would distort.
 */
export default defineConfig({
  test: {
    include: ['chaos/**/*.chaos.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
