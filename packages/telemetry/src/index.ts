export * from './logger.ts';
export * from './metrics-catalog.ts';
export * from './metrics-samples.ts';
export * from './metrics-fields.ts';
export * from './metrics-family.ts';
export * from './metrics-node-families.ts';
export * from './metrics-scrape-snapshot.ts';
export * from './metrics-rate-window.ts';
export * from './metrics-text-parser.ts';
export * from './metrics-server.ts';
export * from './event-loop-watchdog.ts';
/** prom-client's registry, so packages that only assemble metrics need not depend on prom-client. */
export { Registry } from 'prom-client';
