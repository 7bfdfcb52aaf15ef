export * from './load-env.ts';
export * from './drain-on-signals.ts';
export * from './child-env.ts';
