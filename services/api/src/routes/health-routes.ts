import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { listLiveNodes } from '@gembatch/node-stats';
import { HealthResponse, ReadinessResponse } from './api-schemas.ts';
import { errorMessage } from '@gembatch/contracts';

/** A readiness probe must answer within its own timeout (Kubernetes defaults to 1 s). */
const REDIS_CHECK_TIMEOUT_MS = 900;

export interface HealthRouteDeps {
  redis: Redis;
  prefix: string;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `GET /healthz` (the process answers) and `GET /readyz` (Redis answers and a worker has its model loaded). */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthRouteDeps): void {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'The process is alive.', response: { 200: HealthResponse } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Ready: Redis answers and at least one worker has loaded its model.',
        response: { 200: ReadinessResponse, 503: ReadinessResponse },
      },
    },
    async (request, reply) => {
      let workers: number | null = null;
      try {
        await withTimeout(deps.redis.ping(), REDIS_CHECK_TIMEOUT_MS);
        workers = (await withTimeout(listLiveNodes(deps.redis, deps.prefix), REDIS_CHECK_TIMEOUT_MS)).length;
      } catch (error) {
        request.log.warn({ err: errorMessage(error) }, 'readiness: redis check failed');
        return reply.code(503).send({
          status: 'unavailable',
          checks: { redis: 'failed', workers },
          error: { code: 'GB_ERR_SERVICE_UNAVAILABLE', message: 'redis: not reachable' },
        });
      }
      if (workers === 0)
        return reply.code(503).send({
          status: 'unavailable',
          checks: { redis: 'ok', workers },
          error: { code: 'GB_ERR_SERVICE_UNAVAILABLE', message: 'workers: no worker has loaded its model yet' },
        });
      return { status: 'ready', checks: { redis: 'ok', workers } };
    },
  );
}
