export * from './redis-connection.ts';
export * from './node-registry.ts';
export * from './processor.ts';
export * from './define-worker.ts';
export * from './node-stats-reporter.ts';
export * from './job-producer.ts';
export * from './job-queries.ts';
export * from './job-events.ts';
