import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';

/** Request latency buckets (s): 1 ms polls to multi-second uploads. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** The route label of requests no route matched, so junk URLs cannot grow the label set. */
const UNMATCHED_ROUTE = 'unmatched';

/**
 * The API's own metrics, in a private registry: requests by method, route pattern and status,
 * their latency, and uploaded bytes. Labels never carry a raw URL or an id.
 */
export class HttpMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'gembatch_api_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'gembatch_api_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method and route pattern.',
    labelNames: ['method', 'route'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly uploadBytes = new Counter({
    name: 'gembatch_api_upload_bytes_total',
    help: 'Bytes of files accepted by POST /v1/files.',
    registers: [this.registry],
  });

  /**
   * Counts every answered request (an `onResponse` hook) and serves `GET /metrics` behind `guard`
   * (`undefined`: open; `false`: not served on this app).
   */
  register(app: FastifyInstance, guard?: onRequestAsyncHookHandler | false): void {
    app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
      const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
      this.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      this.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });
    if (guard === false) return;
    app.get('/metrics', { schema: { hide: true }, ...(guard ? { onRequest: guard } : {}) }, async (_request, reply) =>
      reply.type(this.registry.contentType).send(await this.registry.metrics()),
    );
  }
}
