import { join, resolve } from 'node:path';
import { BatchFeeder } from '@gembatch/batches';
import { drainOnSignals, exitOnConfigError } from '@gembatch/config';
import { closeRedisConnection, createRedisConnection, JobProducer, redisKeyPrefix } from '@gembatch/queue';
import { FileStore, FileSystemBlobStore } from '@gembatch/storage';
import { createLogger, startMetricsServer, type Logger, type MetricsServer } from '@gembatch/telemetry';
import { buildApp } from './app.ts';
import { apiAuthEnabled, isLoopback, loadApiEnv, type ApiEnv } from './env.ts';
import { HttpMetrics } from './plugins/http-metrics.ts';

/** After a drain signal, give in-flight requests this long before exiting anyway. */
const DRAIN_TIMEOUT_MS = 30_000;

/** The one exposed configuration still allowed (GEMBATCH_ALLOW_NO_AUTH=true) is said loudly at start. */
function warnAboutExposure(env: ApiEnv, log: Logger): void {
  if (isLoopback(env.GEMBATCH_API_HOST) || apiAuthEnabled(env)) return;
  log.warn({ host: env.GEMBATCH_API_HOST }, 'GEMBATCH_ALLOW_NO_AUTH=true: the API listens beyond this machine without API keys; anyone who can reach it can submit jobs and read results');
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
  const producer = new JobProducer({ connection: redis, prefix: env.GEMBATCH_REDIS_PREFIX, attempts: env.GEMBATCH_JOB_ATTEMPTS, retentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS });
  const blobStore = new FileSystemBlobStore({ root: env.GEMBATCH_BLOBS_DIR ? resolve(env.GEMBATCH_BLOBS_DIR) : join(resolve(env.GEMBATCH_DATA_DIR), 'blobs') });
  const feeder = env.GEMBATCH_BATCH_FEEDER
    ? new BatchFeeder({
        redis,
        prefix: env.GEMBATCH_REDIS_PREFIX,
        producer,
        blobStore,
        files: new FileStore({ redis, prefix: env.GEMBATCH_REDIS_PREFIX, blobs: blobStore, retentionSeconds: env.GEMBATCH_FILE_RETENTION_SECONDS }),
        logger: log,
        window: env.GEMBATCH_BATCH_WINDOW,
        maxRequests: env.GEMBATCH_BATCH_MAX_REQUESTS,
        retentionSeconds: env.GEMBATCH_JOB_RETENTION_SECONDS,
      })
    : undefined;
  const metrics = new HttpMetrics();
  const app = await buildApp({ env, redis, blobStore, producer, logger: log, metrics, ...(feeder ? { onBatchChange: () => feeder.poke() } : {}) });
  let metricsServer: MetricsServer | undefined;

  drainOnSignals({
    log,
    timeoutMs: DRAIN_TIMEOUT_MS,
    close: async () => {
      await metricsServer?.close();
      await app.close();
      await feeder?.close();
      await producer.close();
      await closeRedisConnection(redis);
    },
  });

  warnAboutExposure(env, log);
  try {
    if (env.GEMBATCH_API_METRICS_PORT > 0) metricsServer = await startMetricsServer({ port: env.GEMBATCH_API_METRICS_PORT, host: env.GEMBATCH_API_METRICS_HOST, registry: metrics.registry, logger: log });
    const address = await app.listen({ port: env.GEMBATCH_API_PORT, host: env.GEMBATCH_API_HOST });
    log.info({ address, auth: apiAuthEnabled(env) ? 'api-keys' : 'off', admin: Boolean(env.GEMBATCH_ADMIN_TOKEN), board: env.GEMBATCH_ADMIN_ENABLED, metrics: metricsServer?.url ?? null, maxUploadBytes: env.GEMBATCH_MAX_UPLOAD_BYTES }, 'api listening');
    await feeder?.start();
  } catch (error) {
    log.fatal({ err: error }, 'api failed to start');
    await metricsServer?.close();
    await feeder?.close().catch(() => undefined);
    await producer.close().catch(() => undefined);
    await closeRedisConnection(redis);
    process.exit(1);
  }
}

await main();
