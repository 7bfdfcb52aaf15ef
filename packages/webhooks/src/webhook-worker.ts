import type { Redis } from 'ioredis';
import { CONTROL_QUEUE_NAMES } from '@gembatch/contracts';
import { defineWorker, type GembatchWorker } from '@gembatch/queue';
import type { Logger } from '@gembatch/telemetry';
import { createWebhookDeliverer, type WebhookDelivererOptions } from './deliver-webhook.ts';
import { WebhookDeliveries } from './webhook-deliveries.ts';
import type { WebhookConfig } from './webhook-env.ts';
import { WebhookJobData } from './webhook-event.ts';

export interface WebhookWorkerOptions {
  /** Blocking connection for the BullMQ worker; the caller closes it. */
  connection: Redis;
  /** Request/response connection for delivery records; the caller closes it. */
  redis: Redis;
  prefix: string;
  config: WebhookConfig;
  logger: Logger;
  /** How long delivery records stay readable (s). */
  retentionSeconds: number;
  /** Deliveries in flight at once. Defaults to `8`. */
  concurrency?: number;
  /** See `WebhookDelivererOptions.ready`. */
  ready?: WebhookDelivererOptions['ready'];
}

/**
 * Starts the `webhooks` queue consumer. Returns undefined when webhooks are off (no allowlist), so
 * callers can start it unconditionally.
 */
export function startWebhookWorker(options: WebhookWorkerOptions): GembatchWorker | undefined {
  const { config } = options;
  if (!config.allowlist.enabled || !config.secret) return undefined;
  const deliveries = new WebhookDeliveries(options.redis, options.prefix, options.retentionSeconds);
  return defineWorker({
    queue: CONTROL_QUEUE_NAMES.webhooks,
    prefix: options.prefix,
    connection: options.connection,
    // Why 8: deliveries are small outbound POSTs that mostly wait on the network.
    concurrency: options.concurrency ?? 8,
    logger: options.logger.child({ component: 'webhooks' }),
    parse: (data) => WebhookJobData.parse(data),
    processor: createWebhookDeliverer({
      allowlist: config.allowlist,
      secret: config.secret,
      deliveries,
      timeoutMs: config.timeoutMs,
      ...(options.ready ? { ready: options.ready } : {}),
    }),
  });
}
