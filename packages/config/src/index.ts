export * from './load-env.ts';
export * from './child-env.ts';
