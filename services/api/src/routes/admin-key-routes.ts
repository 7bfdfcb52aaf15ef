import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { API_KEY_ID_PATTERN, GembatchError, TenantId } from '@gembatch/contracts';
import type { ApiKeyStore } from '../api-key-store.ts';
import { ErrorResponse } from './api-schemas.ts';

const StoredKey = z.object({ id: z.string(), tenant: z.string(), created_at: z.string().describe('ISO 8601') });
const CreatedKey = StoredKey.extend({
  key: z.string().describe('The API key. Shown once: only its sha256 is stored.'),
});
const CreateKeyBody = z.strictObject({ tenant: TenantId });
const KeyListQuery = z.strictObject({ tenant: TenantId.optional() });
const KeyIdParams = z.object({ id: z.string().regex(API_KEY_ID_PATTERN, 'key ids look like key_<16 hex>') });

export interface AdminKeyRouteDeps {
  store: ApiKeyStore;
}

/**
 * Operator routes for API keys, on the admin scope (paths relative to `/admin`):
 * `POST /keys {tenant}` creates one and answers the plain key once, `GET /keys[?tenant=]` lists ids
 * and tenants (never keys), `DELETE /keys/:id` revokes one (effective from the next request).
 */
export function registerAdminKeyRoutes(admin: FastifyInstance, deps: AdminKeyRouteDeps): void {
  admin.post(
    '/keys',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create an API key for a tenant; the key is shown once (operator).',
        body: CreateKeyBody,
        response: { 201: CreatedKey, 400: ErrorResponse },
      },
    },
    async (request, reply) => {
      const { tenant } = request.body as z.infer<typeof CreateKeyBody>;
      const created = await deps.store.create(tenant);
      request.log.info({ keyId: created.id, tenant }, 'api key created');
      return reply.code(201).send(created);
    },
  );

  admin.get(
    '/keys',
    {
      schema: {
        tags: ['admin'],
        summary: 'Stored API keys: ids, tenants, creation times (operator).',
        querystring: KeyListQuery,
        response: { 200: z.object({ object: z.literal('list'), data: z.array(StoredKey) }) },
      },
    },
    async (request) => {
      const { tenant } = request.query as z.infer<typeof KeyListQuery>;
      return { object: 'list' as const, data: await deps.store.list(tenant) };
    },
  );

  admin.delete(
    '/keys/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Revoke an API key (operator).',
        params: KeyIdParams,
        response: { 200: StoredKey.extend({ revoked: z.literal(true) }), 404: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as z.infer<typeof KeyIdParams>;
      const revoked = await deps.store.revoke(id);
      if (!revoked) throw new GembatchError('GB_ERR_NOT_FOUND', `id: no API key ${id}`);
      request.log.info({ keyId: id, tenant: revoked.tenant }, 'api key revoked');
      return { ...revoked, revoked: true as const };
    },
  );
}
