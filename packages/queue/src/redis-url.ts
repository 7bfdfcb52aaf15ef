/** A `host:port` pair of a cluster node or a sentinel. */
export interface RedisHostPort {
  host: string;
  port: number;
}

/** What a `REDIS_URL` names: one server, a Redis Cluster, or a master found through Sentinel. */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: RedisHostPort[]; username?: string; password?: string; tls: boolean }
  | {
      kind: 'sentinel';
      sentinels: RedisHostPort[];
      masterName: string;
      username?: string;
      password?: string;
      db: number;
      tls: boolean;
    };

/** Default ports when a URL leaves them out. */
const REDIS_PORT = 6379;
const SENTINEL_PORT = 26379;

/**
 * Parses the `REDIS_URL` forms gembatch accepts:
 * - `redis://[user:pass@]host:port[/db]` (or `rediss://`): one server;
 * - `redis+cluster://[user:pass@]h1:p1,h2:p2` (or `rediss+cluster://`), or a comma-separated list of
 *   `redis://` URLs: a Redis Cluster, any reachable nodes as seeds;
 * - `redis+sentinel://[user:pass@]s1:p1,s2:p2/mastername[/db]` (or `rediss+sentinel://`): the master
 *   called `mastername` as the sentinels report it (the password is the master's; sentinels are
 *   asked without one).
 * Throws an `Error` saying what is wrong.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const value = url.trim();
  const scheme = /^([a-z+]+):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    if (!value.includes(',')) {
      new URL(value);
      return { kind: 'single', url: value };
    }
    // A list of plain URLs: cluster seeds; credentials from the first that has them.
    const urls = value.split(',').map((part) => new URL(part.trim()));
    if (urls.some((u) => u.protocol !== urls[0]?.protocol))
      throw new Error('a list of Redis URLs must all use the same scheme');
    const withAuth = urls.find((u) => u.password !== '' || u.username !== '');
    return {
      kind: 'cluster',
      nodes: urls.map((u) => ({ host: u.hostname, port: Number(u.port || REDIS_PORT) })),
      ...credentials(withAuth?.username, withAuth?.password),
      tls: scheme === 'rediss',
    };
  }
  if (
    scheme === 'redis+cluster' ||
    scheme === 'rediss+cluster' ||
    scheme === 'redis+sentinel' ||
    scheme === 'rediss+sentinel'
  ) {
    const rest = value.slice(scheme.length + 3);
    const at = rest.lastIndexOf('@');
    const auth = at >= 0 ? rest.slice(0, at) : '';
    const afterAuth = at >= 0 ? rest.slice(at + 1) : rest;
    const slash = afterAuth.indexOf('/');
    const hostList = slash >= 0 ? afterAuth.slice(0, slash) : afterAuth;
    const path =
      slash >= 0
        ? afterAuth
            .slice(slash + 1)
            .split('/')
            .filter((p) => p !== '')
        : [];
    const sentinel = scheme.endsWith('sentinel');
    const hosts = hostList.split(',').map((h) => hostPort(h, sentinel ? SENTINEL_PORT : REDIS_PORT));
    if (hosts.length === 0) throw new Error('no hosts in the Redis URL');
    const colon = auth.indexOf(':');
    // Raw (percent-encoded) here; credentials() decodes.
    const username = colon >= 0 ? auth.slice(0, colon) : '';
    const password = colon >= 0 ? auth.slice(colon + 1) : auth;
    const tls = scheme.startsWith('rediss');
    if (!sentinel) {
      if (path.length > 0) throw new Error('a Redis Cluster has only database 0; remove the path');
      return { kind: 'cluster', nodes: hosts, ...credentials(username, password), tls };
    }
    const [masterName, db = '0'] = path;
    if (!masterName) throw new Error('a Sentinel URL names the master: redis+sentinel://host:26379/mymaster');
    if (!/^\d+$/.test(db)) throw new Error(`not a database number: ${db}`);
    return {
      kind: 'sentinel',
      sentinels: hosts,
      masterName: decodeURIComponent(masterName),
      ...credentials(username, password),
      db: Number(db),
      tls,
    };
  }
  throw new Error(
    'must be redis://, rediss://, redis+cluster://, redis+sentinel:// or a comma-separated list of redis:// URLs',
  );
}

/** `true` when `url` parses as one of {@link parseRedisUrl}'s forms (for env schemas). */
export function isRedisUrl(url: string): boolean {
  try {
    parseRedisUrl(url);
    return true;
  } catch {
    return false;
  }
}

/**
 * The key prefix to use with this Redis: on a Cluster the prefix is wrapped in a hash tag
 * (`gembatch` → `{gembatch}`), so every key of every queue, and gembatch's own keys, hash to one
 * slot — BullMQ's Lua scripts, flows across queues and gembatch's MULTIs touch several keys at once,
 * which a Cluster allows only within one slot. A prefix that already has a tag is kept; a single
 * server or Sentinel keeps the plain prefix, so existing data stays where it is.
 */
export function redisKeyPrefix(prefix: string, url: string): string {
  if (prefix.includes('{')) return prefix;
  return parseRedisUrl(url).kind === 'cluster' ? `{${prefix}}` : prefix;
}

function hostPort(text: string, defaultPort: number): RedisHostPort {
  const trimmed = text.trim();
  // [::1]:7000 or host:7000 or host
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(trimmed);
  if (!match || !match[1]) throw new Error(`not a host:port: ${trimmed}`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port: match[2] ? Number(match[2]) : defaultPort };
}

function credentials(
  username: string | undefined,
  password: string | undefined,
): { username?: string; password?: string } {
  return {
    ...(username ? { username: decodeURIComponent(username) } : {}),
    ...(password ? { password: decodeURIComponent(password) } : {}),
  };
}
