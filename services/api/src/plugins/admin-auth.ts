import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';

/** Every operator route lives under this prefix, behind the admin token. */
export const ADMIN_PREFIX = '/admin';

/** Registers some operator routes on the admin scope; paths are relative to `/admin`. */
export type AdminRoutes = (admin: FastifyInstance) => void | Promise<void>;

/** sha256 of a secret: fixed-length inputs for `timingSafeEqual`, whatever length was presented. */
const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/**
 * The token a request presents: `Authorization: Bearer <token>`, or HTTP Basic with the token as
 * the password and any user name (browsers prompt for that on the Bull Board page).
 */
function presentedAdminToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/**
 * An `onRequest` hook that lets a request through only if it presents `token` (constant-time
 * compare of sha256 digests), and otherwise answers 401 `GB_ERR_UNAUTHORIZED` itself. It replies
 * rather than throws because some admin routes (Bull Board) have an error handler of their own.
 */
export function adminAuth(token: string): onRequestAsyncHookHandler {
  const expected = digest(token);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const presented = presentedAdminToken(request);
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="gembatch admin", Basic realm="gembatch admin", charset="UTF-8"')
      .send({
        error: {
          code: 'GB_ERR_UNAUTHORIZED',
          message: 'authorization: admin routes need the admin token as "Authorization: Bearer <GEMBATCH_ADMIN_TOKEN>"',
        },
      });
  };
}

/**
 * Mounts operator routes under `/admin`, every one behind `adminAuth(token)`; only those tagged
 * `admin` (the operator JSON API) appear in the OpenAPI document. With no token nothing is registered at all (the routes answer 404), so
 * a deployment without `GEMBATCH_ADMIN_TOKEN` has no operator surface. Returns whether it mounted.
 */
export async function registerAdminRoutes(
  app: FastifyInstance,
  token: string | undefined,
  routes: readonly AdminRoutes[],
): Promise<boolean> {
  if (!token) return false;
  await app.register(
    async (admin) => {
      admin.addHook('onRequest', adminAuth(token));
      // Untagged operator routes (Bull Board's internals) are not part of the contract published at /docs.
      admin.addHook('onRoute', (route) => {
        if (!route.schema?.tags?.includes('admin')) route.schema = { ...route.schema, hide: true };
      });
      // Unknown admin paths answer 404 only after the token check (the hook above runs first), so a
      // scan without the token cannot tell which operator routes exist.
      admin.setNotFoundHandler(async (request, reply) =>
        reply.code(404).send({
          error: {
            code: 'GB_ERR_NOT_FOUND',
            message: `route: no admin route ${request.method} ${request.url.split('?')[0]}`,
          },
        }),
      );
      for (const register of routes) await register(admin);
    },
    { prefix: ADMIN_PREFIX },
  );
  return true;
}
