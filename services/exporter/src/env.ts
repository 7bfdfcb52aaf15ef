import { z } from 'zod';
import { envInt } from '@gembatch/config';
import { isRedisUrl } from '@gembatch/queue';

/** Exporter configuration: one variable per setting, parsed in `main.ts` with `loadEnv`. */
export const ExporterEnv = z.object({
  /** Redis the queues and node stats live in. */
  REDIS_URL: z
    .string()
    .refine(
      isRedisUrl,
      'must be redis://, rediss://, redis+cluster://h1:p1,h2:p2, redis+sentinel://host:26379/master or a list of redis:// URLs',
    )
    .default('redis://127.0.0.1:6379'),
  /** Key prefix of every queue and record (the same as the API's and workers'). */
  GEMBATCH_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('gembatch'),
  /** Port of the fleet `/metrics` (Prometheus scrapes it). */
  GEMBATCH_EXPORTER_PORT: envInt(0, 65535).default(9464),
  /** Interface it listens on; loopback by default (set `0.0.0.0` where Prometheus runs in another container or host). */
  GEMBATCH_EXPORTER_HOST: z.string().min(1).default('127.0.0.1'),
  /** Longest a scrape waits for Redis before answering with `gembatch_exporter_redis_up 0` (ms). */
  GEMBATCH_EXPORTER_READ_TIMEOUT_MS: envInt(100, 60_000).default(5_000),
  /** pino level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type ExporterEnv = z.output<typeof ExporterEnv>;
