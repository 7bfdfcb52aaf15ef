export * from './node-registry.ts';
export * from './node-stats-reporter.ts';
