import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { DEFAULT_TENANT, GembatchError } from '@gembatch/contracts';
import type { ApiKeyRing } from '../api-key-ring.ts';
import type { ApiKeyStore } from '../api-key-store.ts';

/** Where API keys come from when auth is on: `GEMBATCH_API_KEYS` first, then keys stored in Redis. */
export interface TenantKeys {
  /** Keys from `GEMBATCH_API_KEYS`; checked in memory. */
  ring: ApiKeyRing | undefined;
  /** Keys created with `gembatch keys create`; read from Redis on every request. */
  store: ApiKeyStore;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the request acts for (from its API key; `default` when auth is off). */
    tenant: string;
  }
}

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1];
  }
  const header = request.headers['x-api-key'];
  return typeof header === 'string' && header.length > 0 ? header : undefined;
}

/**
 * An `onRequest` hook that sets `request.tenant` from the API key, or answers 401
 * `GB_ERR_UNAUTHORIZED`. With no keys (auth off) every request is tenant `default`.
 */
export function tenantAuth(keys: TenantKeys | undefined): onRequestAsyncHookHandler {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!keys) {
      request.tenant = DEFAULT_TENANT;
      return;
    }
    const key = presentedKey(request);
    const tenant = key === undefined ? undefined : (keys.ring?.tenantFor(key) ?? (await keys.store.tenantFor(key)));
    if (tenant === undefined) {
      reply.header('www-authenticate', 'Bearer realm="gembatch"');
      throw new GembatchError(
        'GB_ERR_UNAUTHORIZED',
        key === undefined
          ? 'authorization: send an API key as "Authorization: Bearer <key>"'
          : 'authorization: unknown API key',
      );
    }
    request.tenant = tenant;
  };
}
