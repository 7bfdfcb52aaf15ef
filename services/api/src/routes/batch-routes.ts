import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { z } from 'zod';
import {
  BATCH_ENDPOINTS,
  BATCH_STATUSES,
  CreateBatchRequest,
  parseCreateBatchRequest,
  type BatchService,
} from '@gembatch/batches';
import type { WebhookDeliveries, WebhookDeliveryView } from '@gembatch/webhooks';
import { ErrorResponse, IdParams } from './api-schemas.ts';

export interface BatchRouteDeps {
  batches: BatchService;
  /** Webhook delivery records, shown on each batch as `webhook`. */
  deliveries: WebhookDeliveries;
}

const WebhookAttempt = z.object({
  attempt: z.number().int(),
  at: z.number().int(),
  status_code: z.number().int().optional(),
  error: z.string().optional(),
  duration_ms: z.number().int(),
});
/** gembatch extension: the batch's webhook delivery (null: no webhook, or not sent yet). */
const WebhookDelivery = z
  .object({
    url: z.string(),
    event_id: z.string(),
    event: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.array(WebhookAttempt),
  })
  .nullable();

const Timestamp = z.number().int().nullable();
/** The OpenAI batch object (timestamps in unix seconds). */
const BatchObjectResponse = z.object({
  id: z.string(),
  object: z.literal('batch'),
  endpoint: z.enum(BATCH_ENDPOINTS),
  errors: z
    .object({
      object: z.literal('list'),
      data: z.array(
        z.object({
          code: z.string(),
          message: z.string(),
          param: z.string().nullable(),
          line: z.number().int().nullable(),
        }),
      ),
    })
    .nullable(),
  input_file_id: z.string(),
  completion_window: z.string(),
  status: z.enum(BATCH_STATUSES),
  output_file_id: z.string().nullable(),
  error_file_id: z.string().nullable(),
  created_at: z.number().int(),
  in_progress_at: Timestamp,
  expires_at: Timestamp,
  finalizing_at: Timestamp,
  completed_at: Timestamp,
  failed_at: Timestamp,
  expired_at: Timestamp,
  cancelling_at: Timestamp,
  cancelled_at: Timestamp,
  request_counts: z.object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int() }),
  metadata: z.record(z.string(), z.string()).nullable(),
  webhook_url: z.string().nullable(),
  usage: z.object({ input_tokens: z.number().int(), output_tokens: z.number().int(), total_tokens: z.number().int() }),
  webhook: WebhookDelivery,
});

const BatchListQuery = z.strictObject({
  /** Id of the last batch of the previous page. */
  after: z.string().max(200).optional(),
  /** 1..100. Defaults to 20. */
  limit: z.coerce.number().int().min(1).max(100).optional(),
});
const BatchList = z.object({
  object: z.literal('list'),
  data: z.array(BatchObjectResponse),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
});
const IdempotencyHeaders = z
  .object({
    'idempotency-key': z
      .string()
      .optional()
      .describe('Repeat a create safely: the same key (per tenant, 24 h) returns the batch the first request created.'),
  })
  .loose();

const { $schema: _drop, ...createBody } = z.toJSONSchema(CreateBatchRequest, {
  target: 'openapi-3.0',
  io: 'input',
  unrepresentable: 'any',
}) as Record<string, unknown>;

/** `/v1/batches`: the OpenAI Batch API (create, retrieve, list, cancel) plus results so far. Logic lives in `@gembatch/batches`. */
export function registerBatchRoutes(app: FastifyInstance, deps: BatchRouteDeps): void {
  /** The batch with its webhook delivery (attempts, status) attached. */
  const withWebhook = async <T extends { id: string; webhook_url: string | null }>(
    batch: T,
  ): Promise<T & { webhook: WebhookDeliveryView | null }> => ({
    ...batch,
    webhook: batch.webhook_url ? ((await deps.deliveries.get(batch.id)) ?? null) : null,
  });

  app.post(
    '/v1/batches',
    {
      schema: {
        tags: ['batches'],
        summary:
          'Create a batch: `{input_file_id, endpoint, completion_window, metadata}` (OpenAI), or natively `{file_ids, task, options}` / `{folder, task}`.',
        // Documented here, validated in the handler by the one shape the body's keys choose.
        body: createBody,
        headers: IdempotencyHeaders,
        response: { 200: BatchObjectResponse, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const body = parseCreateBatchRequest(request.body);
      const key = request.headers['idempotency-key'];
      const batch = await deps.batches.createBatch(
        request.tenant,
        body,
        typeof key === 'string' ? { idempotencyKey: key } : {},
      );
      request.log.info({ batchId: batch.id, endpoint: batch.endpoint }, 'batch created');
      return withWebhook(batch);
    },
  );

  app.get(
    '/v1/batches',
    {
      schema: {
        tags: ['batches'],
        summary: "This tenant's batches, newest first (`after`, `limit`).",
        querystring: BatchListQuery,
        response: { 200: BatchList, 400: ErrorResponse },
      },
    },
    async (request) => {
      const query = request.query as z.output<typeof BatchListQuery>;
      const page = await deps.batches.listBatches(request.tenant, query);
      return { ...page, data: await Promise.all(page.data.map(withWebhook)) };
    },
  );

  app.get(
    '/v1/batches/:id',
    {
      schema: {
        tags: ['batches'],
        summary: 'A batch: status, request counts, timestamps, output and error file ids.',
        params: IdParams,
        response: { 200: BatchObjectResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as z.output<typeof IdParams>;
      return withWebhook(await deps.batches.getBatch(request.tenant, id));
    },
  );

  app.post(
    '/v1/batches/:id/cancel',
    {
      schema: {
        tags: ['batches'],
        summary: 'Cancel a batch: `cancelling` now, `cancelled` once its queued requests are withdrawn.',
        params: IdParams,
        response: { 200: BatchObjectResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as z.output<typeof IdParams>;
      const batch = await deps.batches.cancelBatch(request.tenant, id);
      request.log.info({ batchId: id }, 'batch cancel requested');
      return withWebhook(batch);
    },
  );

  for (const kind of ['output', 'errors'] as const) {
    app.get(
      `/v1/batches/:id/${kind}`,
      {
        schema: {
          tags: ['batches'],
          summary: `The ${kind === 'output' ? 'successful results' : 'errors'} so far, as JSONL in input order; readable while the batch runs.`,
          params: IdParams,
          response: {
            200: {
              description: 'JSONL, one line per request',
              content: { 'application/jsonl': { schema: { type: 'string' } } },
            },
            404: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params as z.output<typeof IdParams>;
        // Read the record first, so an unknown batch is a 404 rather than an empty stream.
        await deps.batches.getBatch(request.tenant, id);
        return reply
          .type('application/jsonl; charset=utf-8')
          .send(Readable.from(deps.batches.resultLines(request.tenant, id, kind)));
      },
    );
  }
}
