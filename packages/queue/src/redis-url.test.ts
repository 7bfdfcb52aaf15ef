import { describe, expect, test } from 'vitest';
import { isRedisUrl, parseRedisUrl, redisKeyPrefix } from './redis-url.ts';

describe('parseRedisUrl', () => {
  test('one server stays a URL', () => {
    expect(parseRedisUrl('redis://:pw@redis:6379/2')).toEqual({ kind: 'single', url: 'redis://:pw@redis:6379/2' });
  });

  test('redis+cluster:// and a list of redis:// URLs name cluster seeds, with credentials decoded', () => {
    expect(parseRedisUrl('redis+cluster://:p%40ss@h1:7000,h2:7001,h3')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
        { host: 'h3', port: 6379 },
      ],
      password: 'p@ss',
      tls: false,
    });
    expect(parseRedisUrl('rediss://u:pw@a:7000, rediss://b:7001')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
      username: 'u',
      password: 'pw',
      tls: true,
    });
  });

  test('redis+sentinel:// names sentinels (default port 26379), the master and a database', () => {
    expect(parseRedisUrl('redis+sentinel://:pw@s1,s2:26380/mymaster/3')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      masterName: 'mymaster',
      password: 'pw',
      db: 3,
      tls: false,
    });
  });

  test('malformed forms are refused with a reason', () => {
    expect(() => parseRedisUrl('redis+sentinel://s1:26379')).toThrow(/names the master/);
    expect(() => parseRedisUrl('redis+cluster://h1:7000/1')).toThrow(/database 0/);
    expect(() => parseRedisUrl('http://x')).toThrow(/must be redis:\/\//);
    expect(isRedisUrl('redis://127.0.0.1:6379')).toBe(true);
    expect(isRedisUrl('memcached://x')).toBe(false);
  });
});

describe('redisKeyPrefix', () => {
  test('a cluster gets the hash-tagged prefix; one server and Sentinel keep the plain one; a tag given is kept', () => {
    expect(redisKeyPrefix('gembatch', 'redis+cluster://h1:7000,h2:7001')).toBe('{gembatch}');
    expect(redisKeyPrefix('gembatch', 'redis://h:6379')).toBe('gembatch');
    expect(redisKeyPrefix('gembatch', 'redis+sentinel://s:26379/m')).toBe('gembatch');
    expect(redisKeyPrefix('{gb}', 'redis+cluster://h1:7000')).toBe('{gb}');
  });
});
