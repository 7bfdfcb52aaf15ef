import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import { JobProducer } from '@gembatch/queue';
import { FolderRoot } from '@gembatch/schedules';
import { loadWebhookConfig } from '@gembatch/webhooks';
import { FileSystemBlobStore, type BlobStore } from '@gembatch/storage';
import { createLogger } from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, tempDir, type RedisTestContext } from '@gembatch/testing';
import { buildApp, loadApiEnv } from '../src/index.ts';

export interface Harness {
  app: FastifyInstance;
  redis: Redis;
  producer: JobProducer;
  blobStore: FileSystemBlobStore;
  /** Every log line the app wrote, for privacy checks. */
  logs: string[];
}

/**
 * The API as the server builds it, on the test's Redis prefix and a temp data dir, with its log
 * captured. Everything is closed when the test finishes.
 */
export async function startApi(
  redis: RedisTestContext,
  env: Record<string, string> = {},
  overrides: { blobStore?: BlobStore; redis?: Redis } = {},
): Promise<Harness> {
  const dir = await tempDir('gembatch-api-');
  onTestFinished(() => dir.cleanup());
  const connection = overrides.redis ?? closeAfterTest(openTestRedis(redis.url, { name: `${redis.prefix}:api` }));
  const source = {
    REDIS_URL: redis.url,
    GEMBATCH_REDIS_PREFIX: redis.prefix,
    GEMBATCH_DATA_DIR: dir.path,
    LOG_LEVEL: 'debug',
    GEMBATCH_SWEEP_INTERVAL_SECONDS: '0',
    ...env,
  };
  const apiEnv = loadApiEnv(source);
  // As server.ts does: the webhook allowlist and the schedule root come from the same variables.
  const webhooks = loadWebhookConfig(source);
  const scheduleRoot = apiEnv.GEMBATCH_SCHEDULE_ROOT ? await FolderRoot.open(apiEnv.GEMBATCH_SCHEDULE_ROOT) : undefined;
  const producer = closeAfterTest(
    new JobProducer({
      connection,
      prefix: redis.prefix,
      attempts: apiEnv.GEMBATCH_JOB_ATTEMPTS,
      retentionSeconds: apiEnv.GEMBATCH_JOB_RETENTION_SECONDS,
    }),
  );
  const blobStore = new FileSystemBlobStore({ root: join(dir.path, 'blobs') });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = createLogger({ service: 'api', level: 'debug', destination });
  const app = await buildApp({
    env: apiEnv,
    redis: connection,
    blobStore: overrides.blobStore ?? blobStore,
    producer,
    logger,
    webhooks,
    ...(scheduleRoot ? { scheduleRoot } : {}),
  });
  closeAfterTest(app);
  return { app, redis: connection, producer, blobStore, logs };
}

/** A multipart/form-data body, built by hand so tests control every byte. */
export function multipart(parts: Array<{ name: string; filename?: string; type?: string; content: Buffer | string }>): {
  payload: Buffer;
  headers: Record<string, string>;
} {
  const boundary = `----gembatch${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename !== undefined ? `; filename="${part.filename}"` : ''}`;
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.type ? `Content-Type: ${part.type}\r\n` : ''}\r\n`,
      ),
    );
    chunks.push(Buffer.isBuffer(part.content) ? part.content : Buffer.from(part.content));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** Uploads `content` as the `file` part and returns the parsed 201 body. */
export async function upload(
  app: FastifyInstance,
  content: Buffer | string,
  filename = 'doc.txt',
  headers: Record<string, string> = {},
): Promise<{ id: string; bytes: number; sha256: string; filename: string }> {
  const body = multipart([{ name: 'file', filename, type: 'text/plain', content }]);
  const response = await app.inject({
    method: 'POST',
    url: '/v1/files',
    payload: body.payload,
    headers: { ...body.headers, ...headers },
  });
  if (response.statusCode !== 201) throw new Error(`upload failed: ${response.statusCode} ${response.body}`);
  return response.json();
}
