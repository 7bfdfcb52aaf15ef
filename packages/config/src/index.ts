export * from './load-env.ts';
