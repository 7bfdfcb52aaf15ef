import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { redisKeys, errorMessage } from '@gembatch/contracts';

/** What an audit entry records: every action on a tenant's data, by whom. */
export const AUDIT_ACTIONS = [
  'file.create',
  'file.read',
  'file.content',
  'file.delete',
  'file.expire',
  'job.submit',
  'job.read',
  'job.result',
  'job.cancel',
  'job.delete',
  'tenant.purge',
  'key.create',
  'key.revoke',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** One audit entry: ids and actions only, never content (no file names, texts, prompts or outputs). */
export interface AuditEntry {
  /** The stream id (`<ms>-<seq>`), unique and ordered. */
  id: string;
  /** ms since epoch. */
  at: number;
  action: AuditAction;
  /** The tenant whose data it was. */
  tenant: string;
  /** `tenant` (an API key of that tenant, or no auth) or `admin` (the admin token) or `system` (retention). */
  actor: 'tenant' | 'admin' | 'system';
  /** The API key used, when one was: a stored key's id (`key_…`), or `sha256:<16 hex>` of a configured key. Never the key. */
  key_id?: string;
  /** The file, job or tenant acted on. */
  resource: string;
  /** The request, to match the API log. */
  request_id?: string;
}

export interface AuditQuery {
  tenant?: string;
  action?: AuditAction;
  resource?: string;
  /** ms since epoch (inclusive). */
  since?: number;
  until?: number;
  /** Defaults to 100, at most 1,000. */
  limit?: number;
  /** Stream id to continue after (newest first: older than it). */
  before?: string;
}

/** Entries read per round trip while filtering. */
const READ_PAGE = 500;
/** Entries a filtered query reads at most, so a rare filter cannot scan the whole stream in one call. */
const MAX_SCAN = 50_000;

/**
 * The append-only audit stream (a Redis stream): who (tenant and API key id, the admin, or the
 * retention sweeper) submitted, read and deleted which id, and when. Capped by length on every
 * append (`MAXLEN ~`) and by age in `trim` (the sweeper calls it). Appends never fail a request:
 * a Redis error is logged by the caller's logger and the request goes on.
 */
export class AuditLog {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #key: string;
  readonly #maxEntries: number;
  readonly #retentionMs: number;

  constructor(redis: Redis, prefix: string, options: { maxEntries: number; retentionSeconds: number }) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#key = redisKeys.audit(prefix);
    this.#maxEntries = options.maxEntries;
    this.#retentionMs = options.retentionSeconds * 1000;
  }

  /** Appends one entry. */
  async append(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    const fields = ['action', entry.action, 'tenant', entry.tenant, 'actor', entry.actor, 'resource', entry.resource];
    if (entry.key_id) fields.push('key_id', entry.key_id);
    if (entry.request_id) fields.push('request_id', entry.request_id);
    await this.#redis.xadd(this.#key, 'MAXLEN', '~', this.#maxEntries, '*', ...fields);
  }

  /** Appends an entry for a tenant request (actor and key id from the request), logging instead of throwing. */
  async record(request: FastifyRequest, action: AuditAction, resource: string, tenant = request.tenant): Promise<void> {
    const keyId = await this.#keyId(request).catch(() => undefined);
    await this.append({
      action,
      tenant,
      actor: 'tenant',
      resource,
      request_id: request.id,
      ...(keyId ? { key_id: keyId } : {}),
    }).catch((error: unknown) => {
      request.log.warn({ err: errorMessage(error), action }, 'audit append failed');
    });
  }

  /** A stored key's id (`key_…`, as `gembatch keys list` shows it), else the digest prefix of a configured key. */
  async #keyId(request: FastifyRequest): Promise<string | undefined> {
    const key = presentedKey(request);
    if (key === undefined) return undefined;
    const digest = createHash('sha256').update(key, 'utf8').digest('hex');
    const stored = await this.#redis.hget(redisKeys.apiKey(this.#prefix, digest), 'id');
    return stored ?? `sha256:${digest.slice(0, 16)}`;
  }

  /** Entries newest first, filtered. */
  async query(query: AuditQuery = {}): Promise<{ data: AuditEntry[]; has_more: boolean }> {
    const limit = Math.max(1, Math.min(query.limit ?? 100, 1_000));
    let end = query.before ? `(${query.before}` : query.until !== undefined ? String(query.until) : '+';
    const start = query.since !== undefined ? String(query.since) : '-';
    const data: AuditEntry[] = [];
    let scanned = 0;
    while (data.length <= limit && scanned < MAX_SCAN) {
      const page = await this.#redis.xrevrange(this.#key, end, start, 'COUNT', READ_PAGE);
      if (page.length === 0) break;
      scanned += page.length;
      for (const [id, raw] of page) {
        const entry = toEntry(id, raw);
        if (query.tenant !== undefined && entry.tenant !== query.tenant) continue;
        if (query.action !== undefined && entry.action !== query.action) continue;
        if (query.resource !== undefined && entry.resource !== query.resource) continue;
        data.push(entry);
        if (data.length > limit) break;
      }
      end = `(${page.at(-1)?.[0]}`;
      if (page.length < READ_PAGE) break;
    }
    return { data: data.slice(0, limit), has_more: data.length > limit };
  }

  /** Drops entries older than the retention; resolves how many. */
  async trim(now = Date.now()): Promise<number> {
    return this.#redis.xtrim(this.#key, 'MINID', '~', String(now - this.#retentionMs));
  }
}

/** The API key a request presents (`Authorization: Bearer` or `X-API-Key`), if any. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const bearer = header ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
  return bearer ?? (typeof request.headers['x-api-key'] === 'string' ? request.headers['x-api-key'] : undefined);
}

function toEntry(id: string, raw: string[]): AuditEntry {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) fields[raw[i] as string] = raw[i + 1] as string;
  return {
    id,
    at: Number(id.split('-')[0]),
    action: fields.action as AuditAction,
    tenant: fields.tenant ?? '',
    actor: (fields.actor ?? 'tenant') as AuditEntry['actor'],
    resource: fields.resource ?? '',
    ...(fields.key_id ? { key_id: fields.key_id } : {}),
    ...(fields.request_id ? { request_id: fields.request_id } : {}),
  };
}
