export * from './redis-server.ts';
export * from './redis-fixture.ts';
export * from './redis-leaks.ts';
export * from './redis-client-list.ts';
export * from './redis-ping.ts';
export * from './free-port.ts';
export * from './docker-engine.ts';
export { findRedisServerBinary } from './spawned-redis.ts';
