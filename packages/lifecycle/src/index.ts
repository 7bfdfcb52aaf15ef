export * from './drain-on-signals.ts';
