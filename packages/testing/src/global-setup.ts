/**
 * Vitest global setup: nothing shared is started here (each test file starts what it needs via
 * fixtures), but this is where suite-wide checks live.
 */
export default function setup(): void {}
