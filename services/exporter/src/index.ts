export * from './env.ts';
export * from './exporter.ts';
export * from './fleet-metrics.ts';
