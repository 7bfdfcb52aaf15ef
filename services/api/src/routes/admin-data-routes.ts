import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { TenantId, errorMessage } from '@gembatch/contracts';
import { AUDIT_ACTIONS, type AuditLog } from '../audit-log.ts';
import type { TenantPurger } from '../tenant-purger.ts';

const TenantParams = z.object({ tenant: TenantId });
const PurgeReport = z
  .object({
    tenant: z.string(),
    jobs: z.number().int(),
    files: z.number().int(),
    keys: z.number().int(),
    batches: z.number().int(),
    schedules: z.number().int(),
  })
  .catchall(z.union([z.number(), z.string()]));
const AuditQueryString = z.strictObject({
  tenant: TenantId.optional(),
  action: z.enum(AUDIT_ACTIONS).optional(),
  /** A file, job or tenant id. */
  resource: z.string().max(200).optional(),
  /** ms since epoch, or ISO 8601. */
  since: z.string().max(40).optional(),
  until: z.string().max(40).optional(),
  /** A stream id from a previous page: entries older than it. */
  before: z
    .string()
    .regex(/^\d+-\d+$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const AuditEntry = z.object({
  id: z.string(),
  at: z.string().describe('ISO 8601'),
  action: z.enum(AUDIT_ACTIONS),
  tenant: z.string(),
  actor: z.enum(['tenant', 'admin', 'system']),
  key_id: z.string().optional(),
  resource: z.string(),
  request_id: z.string().optional(),
});

export interface AdminDataRouteDeps {
  purger: TenantPurger;
  audit: AuditLog;
}

/** ms since epoch from `123` or an ISO 8601 date; `undefined` for neither. */
function toMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Operator routes for data (paths relative to `/admin`, behind the admin token):
 * `POST /tenants/:tenant/purge` deletes everything of a tenant; `GET /audit` reads the audit stream,
 * newest first, filtered by tenant, action, resource and time.
 */
export function registerAdminDataRoutes(admin: FastifyInstance, deps: AdminDataRouteDeps): void {
  // API keys created and revoked by the admin (the key routes live beside these) are audited by id:
  // the answer is read only for its `id` and `tenant`; the key itself is never kept.
  admin.addHook('onSend', async (request, reply, payload) => {
    const route = request.routeOptions.url;
    const action =
      route === '/admin/keys' && request.method === 'POST' && reply.statusCode === 201
        ? 'key.create'
        : route === '/admin/keys/:id' && request.method === 'DELETE' && reply.statusCode === 200
          ? 'key.revoke'
          : undefined;
    if (action && typeof payload === 'string') {
      const { id, tenant } = JSON.parse(payload) as { id?: unknown; tenant?: unknown };
      if (typeof id === 'string' && typeof tenant === 'string') {
        await deps.audit
          .append({ action, tenant, actor: 'admin', resource: id, request_id: request.id })
          .catch((error: unknown) => request.log.warn({ err: errorMessage(error) }, 'audit append failed'));
      }
    }
    return payload;
  });

  admin.post(
    '/tenants/:tenant/purge',
    {
      schema: {
        tags: ['admin'],
        summary: 'Delete everything a tenant owns (operator).',
        params: TenantParams,
        response: { 200: PurgeReport },
      },
    },
    async (request) => {
      const { tenant } = request.params as z.infer<typeof TenantParams>;
      const report = await deps.purger.purge(tenant);
      request.log.info({ ...report }, 'tenant purged');
      await deps.audit
        .append({ action: 'tenant.purge', tenant, actor: 'admin', resource: tenant, request_id: request.id })
        .catch((error: unknown) => request.log.warn({ err: errorMessage(error) }, 'audit append failed'));
      return report;
    },
  );

  admin.get(
    '/audit',
    {
      schema: {
        tags: ['admin'],
        summary: 'The audit stream, newest first (operator).',
        querystring: AuditQueryString,
        response: { 200: z.object({ object: z.literal('list'), data: z.array(AuditEntry), has_more: z.boolean() }) },
      },
    },
    async (request) => {
      const query = request.query as z.infer<typeof AuditQueryString>;
      const since = toMs(query.since);
      const until = toMs(query.until);
      const page = await deps.audit.query({
        ...(query.tenant ? { tenant: query.tenant } : {}),
        ...(query.action ? { action: query.action } : {}),
        ...(query.resource ? { resource: query.resource } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(query.before ? { before: query.before } : {}),
        ...(query.limit ? { limit: query.limit } : {}),
      });
      return {
        object: 'list' as const,
        data: page.data.map((entry) => ({ ...entry, at: new Date(entry.at).toISOString() })),
        has_more: page.has_more,
      };
    },
  );
}
