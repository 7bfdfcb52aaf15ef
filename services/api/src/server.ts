import { join, resolve } from 'node:path';
import { BatchFeeder, BatchService, BatchStore, FINAL_BATCH_STATUSES, type BatchObject } from '@gembatch/batches';
import { ConfigError, exitOnConfigError } from '@gembatch/config';
import { drainOnSignals } from '@gembatch/lifecycle';
import { FolderRoot, ScheduleStore, startScheduleRunWorker } from '@gembatch/schedules';
import { loadWebhookConfig, startWebhookWorker, WebhookProducer } from '@gembatch/webhooks';
import { closeRedisConnection, createRedisConnection, JobProducer, redisKeyPrefix } from '@gembatch/queue';
import { FileStore, FileSystemBlobStore } from '@gembatch/storage';
import { createLogger, startMetricsServer, type Logger, type MetricsServer } from '@gembatch/telemetry';
import { buildApp } from './app.ts';
import { apiAuthEnabled, isLoopback, loadApiEnv, type ApiEnv } from './env.ts';
import { HttpMetrics } from './plugins/http-metrics.ts';
import { batchRequestCheck, requestLimitsFromEnv } from './request-limits.ts';

/** After a drain signal, give in-flight requests this long before exiting anyway. */
const DRAIN_TIMEOUT_MS = 30_000;

/** The one exposed configuration still allowed (GEMBATCH_ALLOW_NO_AUTH=true) is said loudly at start. */
function warnAboutExposure(env: ApiEnv, log: Logger): void {
  if (isLoopback(env.GEMBATCH_API_HOST) || apiAuthEnabled(env)) return;
  log.warn(
    { host: env.GEMBATCH_API_HOST },
    'GEMBATCH_ALLOW_NO_AUTH=true: the API listens beyond this machine without API keys; anyone who can reach it can submit jobs and read results',
  );
}

/** API entry point: parse config (exit 1 naming every bad variable), listen, drain on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let env: ApiEnv;
  try {
    const loaded = loadApiEnv();
    // On a Redis Cluster the prefix carries a hash tag, so every key stays in one slot.
    env = { ...loaded, GEMBATCH_REDIS_PREFIX: redisKeyPrefix(loaded.GEMBATCH_REDIS_PREFIX, loaded.REDIS_URL) };
  } catch (error) {
    exitOnConfigError(error, 'gembatch-api');
  }
  const log = createLogger({ service: 'api', level: env.LOG_LEVEL });
  // One line when Redis is lost and one when it is back, not one per reconnect attempt.
  const redis = createRedisConnection({ url: env.REDIS_URL, name: 'gembatch-api', logger: log });
  const producer = new JobProducer({
    connection: redis,
    prefix: env.GEMBATCH_REDIS_PREFIX,
    attempts: env.GEMBATCH_JOB_ATTEMPTS,
    retentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS,
  });
  const blobStore = new FileSystemBlobStore({
    root: env.GEMBATCH_BLOBS_DIR ? resolve(env.GEMBATCH_BLOBS_DIR) : join(resolve(env.GEMBATCH_DATA_DIR), 'blobs'),
  });
  const webhookConfig = loadWebhookConfig();
  let scheduleRoot: FolderRoot | undefined;
  if (env.GEMBATCH_SCHEDULE_ROOT) {
    try {
      scheduleRoot = await FolderRoot.open(env.GEMBATCH_SCHEDULE_ROOT);
    } catch {
      exitOnConfigError(new ConfigError(['GEMBATCH_SCHEDULE_ROOT: not an existing directory']), 'gembatch-api');
    }
  }
  const webhookProducer = new WebhookProducer({
    connection: redis,
    prefix: env.GEMBATCH_REDIS_PREFIX,
    attempts: webhookConfig.attempts,
    backoffMs: webhookConfig.backoffMs,
    retentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS,
  });
  const files = new FileStore({
    redis,
    prefix: env.GEMBATCH_REDIS_PREFIX,
    blobs: blobStore,
    retentionSeconds: env.GEMBATCH_FILE_RETENTION_SECONDS,
  });
  const feeder = env.GEMBATCH_BATCH_FEEDER
    ? new BatchFeeder({
        redis,
        prefix: env.GEMBATCH_REDIS_PREFIX,
        producer,
        blobStore,
        files,
        logger: log,
        window: env.GEMBATCH_BATCH_WINDOW,
        maxRequests: env.GEMBATCH_BATCH_MAX_REQUESTS,
        retentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS,
        checkRequest: batchRequestCheck(requestLimitsFromEnv(env)),
        onEnded: async (batch) => {
          if (batch.webhook_url)
            await webhookProducer.send({
              subjectId: batch.id,
              url: batch.webhook_url,
              type: `batch.${batch.status as 'completed' | 'failed' | 'cancelled' | 'expired'}`,
              data: batchEventData(batch),
            });
        },
      })
    : undefined;
  const metrics = new HttpMetrics();
  const app = await buildApp({
    env,
    redis,
    blobStore,
    producer,
    logger: log,
    metrics,
    webhooks: webhookConfig,
    ...(scheduleRoot ? { scheduleRoot } : {}),
    ...(feeder ? { onBatchChange: () => feeder.poke() } : {}),
  });

  // Webhook deliveries and schedule runs run beside the batch feeder: a run creates a batch and waits for it.
  const workerConnection = feeder
    ? createRedisConnection({ url: env.REDIS_URL, name: 'gembatch-api-control', blocking: true, logger: log })
    : undefined;
  const batchStore = new BatchStore(redis, env.GEMBATCH_REDIS_PREFIX, env.GEMBATCH_JOB_RETENTION_SECONDS);
  const webhookWorker = workerConnection
    ? startWebhookWorker({
        connection: workerConnection,
        redis,
        prefix: env.GEMBATCH_REDIS_PREFIX,
        config: webhookConfig,
        logger: log,
        retentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS,
        // The event is enqueued just before its batch's final status is stored: send once it is.
        ready: async (batchId, event) => {
          const status = (await batchStore.read(batchId))?.status;
          if (status === event.data.status) return 'ready';
          return status === undefined || FINAL_BATCH_STATUSES.includes(status) ? 'superseded' : 'wait';
        },
      })
    : undefined;
  const scheduleWorker =
    workerConnection && scheduleRoot
      ? startScheduleRunWorker({
          connection: workerConnection,
          prefix: env.GEMBATCH_REDIS_PREFIX,
          logger: log,
          store: new ScheduleStore(redis, env.GEMBATCH_REDIS_PREFIX),
          root: scheduleRoot,
          batches: new BatchService({
            redis,
            prefix: env.GEMBATCH_REDIS_PREFIX,
            blobStore,
            files,
            retentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS,
            maxRequests: env.GEMBATCH_BATCH_MAX_REQUESTS,
            onChange: () => feeder?.poke(),
          }),
          files,
          maxFiles: env.GEMBATCH_SCHEDULE_MAX_FILES,
          concurrency: env.GEMBATCH_SCHEDULE_CONCURRENCY,
        })
      : undefined;
  let metricsServer: MetricsServer | undefined;

  drainOnSignals({
    log,
    timeoutMs: DRAIN_TIMEOUT_MS,
    close: async () => {
      await metricsServer?.close();
      await app.close();
      // Why 1 s: a run mostly waits on its batch; interrupted, it is retried and resumes with the same batch.
      await scheduleWorker?.close(1_000);
      await feeder?.close();
      await webhookWorker?.close();
      await webhookProducer.close();
      if (workerConnection) await closeRedisConnection(workerConnection);
      await producer.close();
      await closeRedisConnection(redis);
    },
  });

  warnAboutExposure(env, log);
  try {
    if (env.GEMBATCH_API_METRICS_PORT > 0)
      metricsServer = await startMetricsServer({
        port: env.GEMBATCH_API_METRICS_PORT,
        host: env.GEMBATCH_API_METRICS_HOST,
        registry: metrics.registry,
        logger: log,
      });
    const address = await app.listen({ port: env.GEMBATCH_API_PORT, host: env.GEMBATCH_API_HOST });
    log.info(
      {
        address,
        auth: apiAuthEnabled(env) ? 'api-keys' : 'off',
        admin: Boolean(env.GEMBATCH_ADMIN_TOKEN),
        board: env.GEMBATCH_ADMIN_ENABLED,
        metrics: metricsServer?.url ?? null,
        maxUploadBytes: env.GEMBATCH_MAX_UPLOAD_BYTES,
      },
      'api listening',
    );
    await feeder?.start();
  } catch (error) {
    log.fatal({ err: error }, 'api failed to start');
    await metricsServer?.close();
    await feeder?.close().catch(() => undefined);
    await Promise.allSettled([scheduleWorker?.close(), webhookWorker?.close(), webhookProducer.close()]);
    if (workerConnection) await closeRedisConnection(workerConnection);
    await producer.close().catch(() => undefined);
    await closeRedisConnection(redis);
    process.exit(1);
  }
}

/** What a batch webhook event carries: ids, status and counts (never content). */
function batchEventData(batch: BatchObject): Record<string, unknown> {
  return {
    id: batch.id,
    object: 'batch',
    status: batch.status,
    request_counts: batch.request_counts,
    output_file_id: batch.output_file_id,
    error_file_id: batch.error_file_id,
    metadata: batch.metadata,
  };
}

await main();
