export * from './app.ts';
export * from './env.ts';
export * from './api-key-ring.ts';
export * from './api-key-store.ts';
