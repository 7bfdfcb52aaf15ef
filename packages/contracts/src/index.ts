export * from './errors.ts';
export * from './queues.ts';
export * from './ids.ts';
export * from './tasks/index.ts';
export * from './jobs.ts';
export * from './node-stats.ts';
export * from './worker-events.ts';
