import { createHash, timingSafeEqual } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import {
  BATCH_STATUSES,
  listAllBatches,
  listBatchRequests,
  MAX_REQUEST_PAGE,
  type BatchService,
} from '@gembatch/batches';
import { Timings, Usage } from '@gembatch/contracts';
import { getJobView, type JobQueues } from '@gembatch/queue';
import { listLiveNodes } from '@gembatch/node-stats';
import type { BlobStore } from '@gembatch/storage';
import { ErrorResponse, IdParams } from './api-schemas.ts';

/** The console's own files: plain ES modules, CSS and one HTML page, written by hand (no build step). */
export const CONSOLE_ASSETS_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Everything the page may load comes from this origin: no CDN, no inline script, no frame. The
 * browser itself refuses anything else, so an offline site behaves exactly like a connected one.
 */
const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Serves `GET /console` (the page) and `GET /console/<asset>`; the files are read once at start-up. */
export async function registerConsoleAssets(app: FastifyInstance, dir: string = CONSOLE_ASSETS_DIR): Promise<void> {
  const assets = new Map<string, { body: Buffer; type: string; etag: string }>();
  for (const name of await readdir(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (!type) continue;
    const body = await readFile(join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` });
  }
  const send = (request: FastifyRequest, reply: FastifyReply, name: string) => {
    const asset = assets.get(name);
    if (!asset)
      return reply.code(404).send({ error: { code: 'GB_ERR_NOT_FOUND', message: `console asset ${name} not found` } });
    reply
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .header('etag', asset.etag);
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };
  const hidden = { schema: { hide: true } };
  app.get('/console', hidden, (request, reply) => send(request, reply, 'index.html'));
  app.get('/console/', hidden, (request, reply) => send(request, reply, 'index.html'));
  app.get('/console/:name', hidden, (request, reply) =>
    send(request, reply, (request.params as { name: string }).name),
  );
}

const RequestPageQuery = z.strictObject({
  /** 0-based index of the first request. Defaults to 0. */
  offset: z.coerce.number().int().min(0).optional(),
  /** Requests per page (1..200). Defaults to 50. */
  limit: z.coerce.number().int().min(1).max(MAX_REQUEST_PAGE).optional(),
});

const BatchRequestRow = z.object({
  index: z.number().int(),
  custom_id: z.string(),
  job_id: z.string().nullable(),
  status: z.enum(['pending', 'queued', 'extracting', 'running', 'completed', 'failed', 'cancelled']),
  finished_at: z.number().int().nullable().describe('Unix ms'),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  usage: Usage.nullable(),
  timings: Timings.nullable(),
});
const BatchRequestList = z.object({
  object: z.literal('list'),
  data: z.array(BatchRequestRow),
  total: z.number().int(),
  offset: z.number().int(),
  has_more: z.boolean(),
});

export interface BatchRequestRouteDeps {
  batches: BatchService;
  queues: JobQueues;
  redis: Redis;
  prefix: string;
  blobStore: BlobStore;
}

/**
 * `GET /v1/batches/:id/requests`: a page of a batch's requests (custom id, job, status, error code,
 * timings, usage) for the console's batch page. Tenant-scoped like every `/v1` route; never a body or result.
 */
export function registerBatchRequestRoutes(app: FastifyInstance, deps: BatchRequestRouteDeps): void {
  app.get(
    '/v1/batches/:id/requests',
    {
      schema: {
        tags: ['batches'],
        summary:
          "A page of the batch's requests in input order: custom_id, job_id, status, error code, timings and usage (never request or result text).",
        params: IdParams,
        querystring: RequestPageQuery,
        response: { 200: BatchRequestList, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as z.output<typeof IdParams>;
      const query = request.query as z.output<typeof RequestPageQuery>;
      const record = await deps.batches.store.get(request.tenant, id);
      const page = await listBatchRequests(
        { redis: deps.redis, prefix: deps.prefix, blobStore: deps.blobStore },
        record,
        query,
      );
      const data = await Promise.all(
        page.data.map(async (entry) => {
          // The job view adds live status (extracting, running) and its timings; it may have expired already.
          const view = entry.job_id
            ? await getJobView(deps.queues, entry.job_id, request.tenant).catch(() => undefined)
            : undefined;
          const status = entry.status === 'queued' && view ? view.status : entry.status;
          return { ...entry, status, usage: view?.usage ?? null, timings: view?.timings ?? null };
        }),
      );
      return { object: 'list' as const, ...page, data };
    },
  );
}

const NodeCard = z.object({
  node: z.string(),
  host: z.string(),
  gpu: z.string(),
  accelerator: z.string(),
  model: z.string(),
  quant: z.string(),
  capabilities: z.array(z.string()),
  sequences: z.number().int(),
  active_sequences: z.number().int(),
  context_per_sequence: z.number().int(),
  generation_tokens_per_second: z.number(),
  generation_tokens_total: z.number(),
  vram_total_bytes: z.number(),
  vram_used_bytes: z.number(),
  ram_used_bytes: z.number(),
  ram_total_bytes: z.number().nullable(),
  started_at: z.number().describe('Unix ms'),
  heartbeat_at: z.number().describe('Unix ms'),
});
const QueueDepth = z.object({
  name: z.string(),
  waiting: z.number().int(),
  active: z.number().int(),
  delayed: z.number().int(),
  prioritized: z.number().int(),
  failed: z.number().int(),
});
const Fleet = z.object({
  object: z.literal('fleet'),
  at: z.number().int().describe('Unix ms'),
  nodes: z.array(NodeCard),
  queues: z.array(QueueDepth),
});

const AdminBatchQuery = z.strictObject({
  /** Id of the last batch of the previous page. */
  after: z.string().max(200).optional(),
  /** Batches per page (1..100). Defaults to 20. */
  limit: z.coerce.number().int().min(1).max(100).optional(),
});
const AdminBatchRow = z.object({
  id: z.string(),
  object: z.literal('batch'),
  tenant: z.string(),
  status: z.enum(BATCH_STATUSES),
  request_counts: z.object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int() }),
  created_at: z.number().int().describe('Unix seconds'),
});
const AdminBatchList = z.object({
  object: z.literal('list'),
  data: z.array(AdminBatchRow),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
});

export interface FleetRouteDeps {
  redis: Redis;
  prefix: string;
  queues: JobQueues;
  /** `GEMBATCH_ADMIN_TOKEN`: the route exists only when it is set. */
  token: string;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * `GET /admin/fleet`: live nodes (from their heartbeat hashes, as the exporter reads them) and the
 * job queues' depths, for the console's nodes view; `GET /admin/batches`: every tenant's batches (ids,
 * statuses and counts only), for its all-tenants view. Both need `Authorization: Bearer <GEMBATCH_ADMIN_TOKEN>`.
 */
export function registerFleetRoutes(app: FastifyInstance, deps: FleetRouteDeps): void {
  const expected = digest(deps.token);
  /** Answers 401 and resolves false unless the request carries the admin token. */
  const admitted = (request: FastifyRequest, reply: FastifyReply, view: string): boolean => {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && timingSafeEqual(digest(bearer), expected)) return true;
    void reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="gembatch admin"')
      .send({
        error: { code: 'GB_ERR_UNAUTHORIZED', message: `authorization: the ${view} view needs the admin token` },
      });
    return false;
  };
  app.get(
    '/admin/fleet',
    {
      schema: {
        tags: ['admin'],
        summary: 'Live nodes (model, quant, sequences, memory, tok/s) and queue depths. Admin token only.',
        response: { 200: Fleet, 401: ErrorResponse },
      },
    },
    async (request, reply) => {
      if (!admitted(request, reply, 'fleet')) return reply;
      const nodes = (await listLiveNodes(deps.redis, deps.prefix)).sort((a, b) => a.node.localeCompare(b.node));
      const queues = await Promise.all(
        Object.values(deps.queues.queues).map(async (queue) => {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
          return {
            name: queue.name,
            waiting: counts.waiting ?? 0,
            active: counts.active ?? 0,
            delayed: counts.delayed ?? 0,
            prioritized: counts.prioritized ?? 0,
            failed: counts.failed ?? 0,
          };
        }),
      );
      return {
        object: 'fleet' as const,
        at: Date.now(),
        nodes: nodes.map((n) => ({
          node: n.node,
          host: n.host,
          gpu: n.gpu,
          accelerator: n.accelerator,
          model: n.model,
          quant: n.quant,
          capabilities: n.capabilities,
          sequences: n.sequences,
          active_sequences: n.active_sequences,
          context_per_sequence: n.context_per_sequence,
          generation_tokens_per_second: n.generation_tokens_per_second,
          generation_tokens_total: n.generation_tokens_total,
          vram_total_bytes: n.vram_total_bytes,
          vram_used_bytes: n.vram_used_bytes,
          ram_used_bytes: n.ram_used_bytes,
          ram_total_bytes: n.ram_total_bytes ?? null,
          started_at: n.started_at,
          heartbeat_at: n.heartbeat_at,
        })),
        queues,
      };
    },
  );
  app.get(
    '/admin/batches',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Batches of every tenant, newest first (`after`, `limit`): id, tenant, status, request counts, created_at; never metadata or content. Admin token only.',
        querystring: AdminBatchQuery,
        response: { 200: AdminBatchList, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request, reply) => {
      if (!admitted(request, reply, 'all-tenants')) return reply;
      const query = request.query as z.output<typeof AdminBatchQuery>;
      const { records, hasMore } = await listAllBatches(deps.redis, deps.prefix, query);
      const data = records.map((r) => ({
        id: r.id,
        object: 'batch' as const,
        tenant: r.tenant,
        status: r.status,
        request_counts: { total: r.total, completed: r.completed, failed: r.failed },
        created_at: Math.floor(r.created_at / 1000),
      }));
      return {
        object: 'list' as const,
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: hasMore,
      };
    },
  );
}
