import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError, envBool, envBytes, envInt, loadEnv } from '@gembatch/config';
import { loadWebhookConfig, WebhookEnvSchema } from '@gembatch/webhooks';
import { ApiKeyRing } from './api-key-ring.ts';
import { isRedisUrl } from '@gembatch/queue';

/** API configuration: one variable per setting, parsed by `loadApiEnv` in `server.ts`. */
export const ApiEnvSchema = z.object({
  /** Port the API listens on (0 picks a free one). */
  GEMBATCH_API_PORT: envInt(0, 65535).default(8080),
  /** Interface to bind. Anything but loopback needs API keys (GEMBATCH_API_KEYS or GEMBATCH_ADMIN_TOKEN), or GEMBATCH_ALLOW_NO_AUTH=true. */
  GEMBATCH_API_HOST: z.string().min(1).default('127.0.0.1'),
  /** Redis the queues and records live in. */
  REDIS_URL: z
    .string()
    .refine(
      isRedisUrl,
      'must be redis://, rediss://, redis+cluster://h1:p1,h2:p2, redis+sentinel://host:26379/master or a list of redis:// URLs',
    )
    .default('redis://127.0.0.1:6379'),
  /** Key prefix of every queue and record (separate stacks can share one Redis); workers must use the same. */
  GEMBATCH_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only')
    .default('gembatch'),
  /** Data directory; blobs go to `<dir>/blobs`, shared with the workers. */
  GEMBATCH_DATA_DIR: z.string().min(1).default('.gembatch'),
  /**
   * Blob store root (uploads, extracted text, results), shared by the API and every worker (NFS / ReadWriteMany across
   * hosts). Defaults to `<GEMBATCH_DATA_DIR>/blobs`.
   */
  GEMBATCH_BLOBS_DIR: z.string().min(1).optional(),
  /** Largest upload accepted by `POST /v1/files` (e.g. `512MiB`); bigger ones get 413. */
  GEMBATCH_MAX_UPLOAD_BYTES: envBytes.pipe(z.number().int().nonnegative()).default(512 * 1024 ** 2),
  /** Most keys in a job's `metadata`; more → 400 naming this variable. */
  GEMBATCH_MAX_METADATA_KEYS: envInt(0, 1_000).default(16),
  /** Most UTF-8 bytes of a job's `metadata` keys and values together (kept with the job for its retention). */
  GEMBATCH_MAX_METADATA_BYTES: envBytes
    .pipe(
      z
        .number()
        .int()
        .nonnegative()
        .max(1024 ** 2),
    )
    .default(4 * 1024),
  /** Largest JSON Schema (`json_schema`, `extract`'s `options.schema`) as JSON text. */
  GEMBATCH_MAX_SCHEMA_BYTES: envBytes
    .pipe(
      z
        .number()
        .int()
        .positive()
        .max(4 * 1024 ** 2),
    )
    .default(64 * 1024),
  /** Deepest nesting of objects and arrays in a JSON Schema (deeper ones exhaust compilers' stacks). */
  GEMBATCH_MAX_SCHEMA_DEPTH: envInt(2, 256).default(64),
  /** Largest inline `text` of `POST /v1/jobs` in UTF-8 bytes (at most 4 MiB, under the 8 MiB JSON body limit); larger documents go through `POST /v1/files`. */
  GEMBATCH_MAX_INLINE_TEXT_BYTES: envBytes
    .pipe(
      z
        .number()
        .int()
        .positive()
        .max(4 * 1024 ** 2),
    )
    .default(1024 ** 2),
  /**
   * `key1:tenant1,key2:tenant2`. Keys created with `gembatch keys create` work as well. Unset with no
   * GEMBATCH_ADMIN_TOKEN: auth is off (every request is tenant `default`). Secret: never logged.
   */
  GEMBATCH_API_KEYS: z.string().optional(),
  /** Let the API listen beyond loopback with auth off (no GEMBATCH_API_KEYS nor GEMBATCH_ADMIN_TOKEN): anyone who reaches it can submit and read. */
  GEMBATCH_ALLOW_NO_AUTH: envBool.default(false),
  /** Tries per job stage before a retryable failure is final. */
  GEMBATCH_JOB_ATTEMPTS: envInt(1, 100).default(3),
  /** How long finished and cancelled jobs stay readable (seconds). Defaults to 7 days. */
  GEMBATCH_JOB_RETENTION_SECONDS: envInt(60).default(7 * 24 * 60 * 60),
  /**
   * How long an uploaded file is kept (seconds), then the record and, once unreferenced, its bytes are deleted. `0`:
   * until deleted. Defaults to 7 days, like jobs.
   */
  GEMBATCH_FILE_RETENTION_SECONDS: envInt(0).default(7 * 24 * 60 * 60),
  /** Jobs a tenant may have queued or running at once; more get 429 `GB_ERR_QUOTA_EXCEEDED`. `0`: no limit. */
  GEMBATCH_TENANT_MAX_QUEUED_JOBS: envInt(0).default(10_000),
  /** Bytes a tenant's files may hold in all (e.g. `100GiB`); an upload past it gets 429. `0`: no limit. */
  GEMBATCH_TENANT_MAX_STORED_BYTES: envBytes.pipe(z.number().int().nonnegative()).default(100 * 1024 ** 3),
  /** How long audit entries are kept (seconds). Defaults to 90 days. */
  GEMBATCH_AUDIT_RETENTION_SECONDS: envInt(60).default(90 * 24 * 60 * 60),
  /** Most audit entries kept (the oldest go first). */
  GEMBATCH_AUDIT_MAX_ENTRIES: envInt(1000).default(1_000_000),
  /** How often the API deletes expired files, unreferenced blobs, dead upload leftovers and old audit entries (seconds). `0`: never. */
  GEMBATCH_SWEEP_INTERVAL_SECONDS: envInt(0).default(300),
  /** Run the batch feeder in this process (one API process holds it at a time; others stand by). */
  GEMBATCH_BATCH_FEEDER: envBool.default(true),
  /** Batch requests and plain jobs in the job queues at once; the feeder shares free slots round-robin by tenant, then batch. */
  GEMBATCH_BATCH_WINDOW: envInt(1, 100_000).default(256),
  /** Plain jobs (`POST /v1/jobs`) share the window fairly with other tenants (past it they wait in Redis as `queued`); false: straight into the queues. */
  GEMBATCH_JOB_FAIR_SHARE: envBool.default(true),
  /** Most request lines in one batch. */
  GEMBATCH_BATCH_MAX_REQUESTS: envInt(1, 10_000_000).default(200_000),
  /** Folder under which `POST /v1/batches {folder}` may read (symlinks resolved; never outside). Unset: folder batches are off. */
  GEMBATCH_BATCH_FOLDER_ROOT: z.string().min(1).optional(),
  /** Folder that schedules' source and output folders must be in (symlinks resolved; never outside). Unset: schedules are off. */
  GEMBATCH_SCHEDULE_ROOT: z.string().min(1).optional(),
  /** Most files one schedule run takes; the rest wait for the next run. */
  GEMBATCH_SCHEDULE_MAX_FILES: envInt(1, 200_000).default(10_000),
  /** Schedule runs going at once in this process (each mostly waits on its batch). */
  GEMBATCH_SCHEDULE_CONCURRENCY: envInt(1, 100).default(4),
  /** Serve the read-only Bull Board operator UI at `/admin/queues` (needs GEMBATCH_ADMIN_TOKEN). */
  GEMBATCH_ADMIN_ENABLED: envBool.default(false),
  /**
   * Token of every `/admin/*` route (`Authorization: Bearer`, or HTTP Basic with it as password); at least 16
   * characters. Unset: no admin routes at all. Secret.
   */
  GEMBATCH_ADMIN_TOKEN: z.string().optional(),
  /** Port of a separate listener serving only the API's Prometheus `/metrics` (0: none). Keep it off the public network. */
  GEMBATCH_API_METRICS_PORT: envInt(0, 65535).default(0),
  /** Interface of the metrics listener. */
  GEMBATCH_API_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** pino level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Webhooks: GEMBATCH_WEBHOOK_ALLOWED_URLS, _SECRET, _ATTEMPTS, _BACKOFF_MS, _TIMEOUT_MS (see @gembatch/webhooks).
  ...WebhookEnvSchema.shape,
});
export type ApiEnv = z.output<typeof ApiEnvSchema>;

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Whether requests need an API key: yes as soon as a key source is configured, keys in
 * `GEMBATCH_API_KEYS` or an admin token (with which keys are created in Redis). Keys stored in
 * Redis are honoured whenever auth is on.
 */
export function apiAuthEnabled(env: Pick<ApiEnv, 'GEMBATCH_API_KEYS' | 'GEMBATCH_ADMIN_TOKEN'>): boolean {
  return Boolean(env.GEMBATCH_API_KEYS?.trim() || env.GEMBATCH_ADMIN_TOKEN);
}

/** Shortest admin token accepted. */
const MIN_ADMIN_TOKEN_LENGTH = 16;

/**
 * Parses the API's environment. Every problem names its variable; secrets (API keys, the admin
 * token) are checked here rather than in the schema so that no message ever repeats their value.
 * Throws a `ConfigError`.
 */
export function loadApiEnv(source: Record<string, string | undefined> = process.env): ApiEnv {
  const problems: string[] = [];
  let env: ApiEnv | undefined;
  try {
    env = loadEnv(ApiEnvSchema, source);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  try {
    ApiKeyRing.parse(source.GEMBATCH_API_KEYS);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  try {
    loadWebhookConfig(source);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems.filter((problem) => !problems.includes(problem)));
  }
  const token = source.GEMBATCH_ADMIN_TOKEN;
  if (token !== undefined && token !== '' && (token.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(token)))
    problems.push(`GEMBATCH_ADMIN_TOKEN: must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters without spaces`);
  if (env && !isLoopback(env.GEMBATCH_API_HOST) && !apiAuthEnabled(env) && !env.GEMBATCH_ALLOW_NO_AUTH) {
    problems.push(
      `GEMBATCH_API_HOST: ${env.GEMBATCH_API_HOST} is not loopback and auth is off; set GEMBATCH_API_KEYS ("key:tenant,...") or GEMBATCH_ADMIN_TOKEN (then create keys with "gembatch keys create"), or set GEMBATCH_ALLOW_NO_AUTH=true to serve every caller as tenant "default"`,
    );
  }
  if (env?.GEMBATCH_ADMIN_ENABLED && !token)
    problems.push(
      'GEMBATCH_ADMIN_ENABLED: the admin board needs GEMBATCH_ADMIN_TOKEN (at least 16 characters); set it or set GEMBATCH_ADMIN_ENABLED=false',
    );
  if (problems.length > 0 || !env) throw new ConfigError(problems);
  return env;
}
