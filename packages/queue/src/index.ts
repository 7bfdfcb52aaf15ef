export * from './redis-connection.ts';
export * from './node-registry.ts';
