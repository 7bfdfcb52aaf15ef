export * from './load-env.ts';
export * from './child-env.ts';
export * from './find-on-path.ts';
export * from './free-port.ts';
export * from './redis-ping.ts';
export * from './socket-probe.ts';
