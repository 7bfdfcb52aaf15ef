import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Redis } from 'ioredis';
import { BatchService, purgeTenantBatches } from '@gembatch/batches';
import { JobAdmission, type JobProducer } from '@gembatch/queue';
import { ScheduleService, type FolderRoot } from '@gembatch/schedules';
import { loadWebhookConfig, WebhookDeliveries, WebhookProducer, type WebhookConfig } from '@gembatch/webhooks';
import { FileStore, JobBlobCleaner, type BlobStore } from '@gembatch/storage';
import { startEventLoopWatchdog, type Logger } from '@gembatch/telemetry';
import { ApiKeyRing } from './api-key-ring.ts';
import { ApiKeyStore } from './api-key-store.ts';
import { AuditLog } from './audit-log.ts';
import { apiAuthEnabled, type ApiEnv } from './env.ts';
import { adminAuth, registerAdminRoutes, type AdminRoutes } from './plugins/admin-auth.ts';
import { QueuedJobQuota } from './queued-job-quota.ts';
import { requestLimitsFromEnv } from './request-limits.ts';
import { RetentionSweeper } from './retention-sweeper.ts';
import { TenantPurger, type TenantDataPurger } from './tenant-purger.ts';
import { registerAdminBoard } from './plugins/admin-board.ts';
import { registerErrorHandler } from './plugins/error-handler.ts';
import { HttpMetrics } from './plugins/http-metrics.ts';
import { tenantAuth } from './plugins/tenant-auth.ts';
import { jsonSerializerCompiler, zodSchemasToOpenApi, zodValidatorCompiler } from './plugins/zod-schemas.ts';
import { registerAdminKeyRoutes } from './routes/admin-key-routes.ts';
import { registerBatchRoutes } from './routes/batch-routes.ts';
import { registerBatchRequestRoutes, registerConsoleAssets, registerFleetRoutes } from './routes/console-routes.ts';
import { registerScheduleRoutes } from './routes/schedule-routes.ts';
import { registerFileRoutes } from './routes/file-routes.ts';
import { registerHealthRoutes } from './routes/health-routes.ts';
import { registerJobRoutes } from './routes/job-routes.ts';
import { registerAdminDataRoutes } from './routes/admin-data-routes.ts';

/**
 * JSON bodies up to 8 MiB: inline `text` may be 1,000,000 characters, up to 4 bytes each in UTF-8,
 * plus JSON escaping. Files go through multipart, which has its own limit.
 */
const JSON_BODY_LIMIT = 8 * 1024 * 1024;
/** Multipart fields are ignored, but a few are tolerated (some clients add their own). */
const MULTIPART_MAX_FIELDS = 16;
/** Probes and scrapes are logged at debug, so polling does not drown the log. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

export interface AppDependencies {
  env: ApiEnv;
  /** Request/response connection (`createRedisConnection({blocking: false})`): file records, readiness. The caller closes it. */
  redis: Redis;
  /** Where uploads and inline texts go; workers read the same store. */
  blobStore: BlobStore;
  /** Adds jobs and owns the queues the job queries read. The caller closes it. */
  producer: JobProducer;
  logger: Logger;
  /** The API's metrics registry, to serve it elsewhere too (the metrics port). Defaults to a new one. */
  metrics?: HttpMetrics;
  /** Extra deleters of tenant data kept outside jobs and files, run by a tenant purge after the schedules' and batches' own. Defaults to none. */
  tenantPurgers?: readonly TenantDataPurger[];
  /** Called when a batch is created or cancelled (the server pokes its batch feeder). */
  onBatchChange?: () => void;
  /** Webhook allowlist and settings (`loadWebhookConfig`). Defaults to webhooks off. */
  webhooks?: WebhookConfig;
  /** The opened `GEMBATCH_SCHEDULE_ROOT`; unset: schedules are refused. */
  scheduleRoot?: FolderRoot;
}

/**
 * Builds the HTTP API from its dependencies (nothing is opened or listened to here): uploads, jobs,
 * health, metrics, OpenAPI docs at `/docs`, and the operator routes under `/admin` (API keys, Bull
 * Board when enabled) when an admin token is set.
 */
export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { env } = deps;
  const keyStore = new ApiKeyStore(deps.redis, env.GEMBATCH_REDIS_PREFIX);
  const keys = apiAuthEnabled(env) ? { ring: ApiKeyRing.parse(env.GEMBATCH_API_KEYS), store: keyStore } : undefined;
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    bodyLimit: JSON_BODY_LIMIT,
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(jsonSerializerCompiler);
  // Bodies are JSON or multipart; a plain-text body is a client mistake better answered with 415.
  app.removeContentTypeParser('text/plain');
  registerErrorHandler(app);
  app.decorateRequest('tenant', '');
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url;
    const fields = {
      method: request.method,
      route: route ?? null,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
      tenant: request.tenant || undefined,
    };
    if (route && QUIET_ROUTES.has(route)) request.log.debug(fields, 'request');
    else request.log.info(fields, 'request');
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'gembatch API',
        version: '1',
        description: 'Batch LLM processing of documents, images and audio on your own GPUs.',
      },
      components: {
        securitySchemes: {
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key from GEMBATCH_API_KEYS or `gembatch keys create` (when auth is on).',
          },
        },
      },
      security: keys ? [{ apiKey: [] }] : [],
    },
    transform: zodSchemasToOpenApi,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // One byte above our own limit: the blob store sees the excess byte and refuses with 413 (multipart alone would truncate silently).
  await app.register(multipart, {
    limits: {
      fileSize: env.GEMBATCH_MAX_UPLOAD_BYTES + 1,
      files: 1,
      fields: MULTIPART_MAX_FIELDS,
      parts: MULTIPART_MAX_FIELDS + 1,
    },
  });

  const metrics = deps.metrics ?? new HttpMetrics();
  // With auth on, /metrics on this port needs the admin token (and is absent without one); Prometheus
  // scrapes the separate GEMBATCH_API_METRICS_PORT listener instead.
  metrics.register(app, keys ? (env.GEMBATCH_ADMIN_TOKEN ? adminAuth(env.GEMBATCH_ADMIN_TOKEN) : false) : undefined);
  // The API's event-loop lag (gembatch_event_loop_lag_seconds) on its /metrics.
  const watchdog = await startEventLoopWatchdog();
  watchdog.register(metrics.registry);
  app.addHook('onClose', () => watchdog.close());
  registerHealthRoutes(app, { redis: deps.redis, prefix: env.GEMBATCH_REDIS_PREFIX });

  const webhooks = deps.webhooks ?? loadWebhookConfig({});
  const schedules = new ScheduleService({
    redis: deps.redis,
    prefix: env.GEMBATCH_REDIS_PREFIX,
    root: deps.scheduleRoot,
    allowlist: webhooks.allowlist,
  });
  app.addHook('onClose', async () => {
    await schedules.close();
  });
  const files = new FileStore({
    redis: deps.redis,
    prefix: env.GEMBATCH_REDIS_PREFIX,
    blobs: deps.blobStore,
    retentionSeconds: env.GEMBATCH_FILE_RETENTION_SECONDS,
  });
  const audit = new AuditLog(deps.redis, env.GEMBATCH_REDIS_PREFIX, {
    maxEntries: env.GEMBATCH_AUDIT_MAX_ENTRIES,
    retentionSeconds: env.GEMBATCH_AUDIT_RETENTION_SECONDS,
  });
  const cleaner = new JobBlobCleaner(deps.blobStore, files.references);
  const quota = new QueuedJobQuota(deps.producer, env.GEMBATCH_TENANT_MAX_QUEUED_JOBS);
  await app.register(async (v1) => {
    v1.addHook('onRequest', tenantAuth(keys));
    registerFileRoutes(v1, {
      files,
      audit,
      metrics,
      maxUploadBytes: env.GEMBATCH_MAX_UPLOAD_BYTES,
      quotaBytes: env.GEMBATCH_TENANT_MAX_STORED_BYTES,
    });
    const limits = requestLimitsFromEnv(env);
    const admission = env.GEMBATCH_JOB_FAIR_SHARE
      ? { admission: new JobAdmission({ producer: deps.producer, window: env.GEMBATCH_BATCH_WINDOW }) }
      : {};
    registerJobRoutes(v1, {
      blobStore: deps.blobStore,
      files,
      producer: deps.producer,
      queues: deps.producer,
      audit,
      cleaner,
      quota,
      limits,
      redis: deps.redis,
      prefix: env.GEMBATCH_REDIS_PREFIX,
      ...admission,
    });
    const batches = new BatchService({
      redis: deps.redis,
      prefix: env.GEMBATCH_REDIS_PREFIX,
      blobStore: deps.blobStore,
      files,
      retentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS,
      maxRequests: env.GEMBATCH_BATCH_MAX_REQUESTS,
      ...(env.GEMBATCH_BATCH_FOLDER_ROOT ? { folderRoot: env.GEMBATCH_BATCH_FOLDER_ROOT } : {}),
      ...(deps.onBatchChange ? { onChange: deps.onBatchChange } : {}),
      assertWebhookUrl: (url, field) => webhooks.allowlist.assertAllowed(url, field),
    });
    registerBatchRoutes(v1, {
      batches,
      deliveries: new WebhookDeliveries(deps.redis, env.GEMBATCH_REDIS_PREFIX, env.GEMBATCH_JOB_RETENTION_SECONDS),
    });
    registerScheduleRoutes(v1, schedules);
    registerBatchRequestRoutes(v1, {
      batches,
      queues: deps.producer,
      redis: deps.redis,
      prefix: env.GEMBATCH_REDIS_PREFIX,
      blobStore: deps.blobStore,
    });
  });
  // The web console: static files, the same API keys (sent by the page as Bearer), the fleet view behind the admin token.
  await registerConsoleAssets(app);
  if (env.GEMBATCH_ADMIN_TOKEN)
    registerFleetRoutes(app, {
      redis: deps.redis,
      prefix: env.GEMBATCH_REDIS_PREFIX,
      queues: deps.producer,
      token: env.GEMBATCH_ADMIN_TOKEN,
    });

  // Operator routes, all under /admin behind GEMBATCH_ADMIN_TOKEN; none exist without the token.
  // Its queue only removes the webhook jobs of purged batches; nothing is sent through it.
  const webhookRecords = new WebhookProducer({ connection: deps.redis, prefix: env.GEMBATCH_REDIS_PREFIX });
  app.addHook('onClose', async () => {
    await webhookRecords.close();
  });
  const batchPurge = {
    redis: deps.redis,
    prefix: env.GEMBATCH_REDIS_PREFIX,
    queues: deps.producer,
    cleaner,
    files,
    onPurged: (batchId: string) => webhookRecords.forget(batchId),
  };
  const others: TenantDataPurger[] = [
    (tenant) => schedules.purgeTenant(tenant),
    (tenant) => purgeTenantBatches(batchPurge, tenant),
    ...(deps.tenantPurgers ?? []),
  ];
  const purger = new TenantPurger({ queues: deps.producer, files, cleaner, keys: keyStore, others });
  const adminRoutes: AdminRoutes[] = [
    (admin) => registerAdminKeyRoutes(admin, { store: keyStore }),
    (admin) => registerAdminDataRoutes(admin, { purger, audit }),
  ];
  if (env.GEMBATCH_ADMIN_ENABLED) adminRoutes.push((admin) => registerAdminBoard(admin, { queues: deps.producer }));
  await registerAdminRoutes(app, env.GEMBATCH_ADMIN_TOKEN, adminRoutes);

  const sweeper = new RetentionSweeper({
    redis: deps.redis,
    prefix: env.GEMBATCH_REDIS_PREFIX,
    files,
    blobs: deps.blobStore,
    queues: deps.producer,
    audit,
    log: deps.logger,
    jobRetentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS,
  });
  app.addHook('onReady', async () => sweeper.start(env.GEMBATCH_SWEEP_INTERVAL_SECONDS));
  app.addHook('onClose', async () => sweeper.stop());
  return app;
}
