import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { CONTROL_QUEUE_NAMES } from '@gembatch/contracts';
import { closeSharedQueue } from '@gembatch/queue';
import { WebhookDeliveries } from './webhook-deliveries.ts';
import { WEBHOOK_EVENT_TYPES, webhookEventId, type WebhookEventType, type WebhookJobData } from './webhook-event.ts';

export interface WebhookProducerOptions {
  /** Request/response connection; the caller owns and closes it. */
  connection: Redis;
  /** BullMQ and gembatch key prefix. */
  prefix: string;
  /** Tries per event. Defaults to `8`. */
  attempts?: number;
  /** First retry delay (ms), doubling. Defaults to `2000`. */
  backoffMs?: number;
  /** How long delivery records and jobs stay readable (s). Defaults to 7 days. */
  retentionSeconds?: number;
}

export interface WebhookNotice {
  /** The batch the event is about. */
  subjectId: string;
  url: string;
  type: WebhookEventType;
  /** Ids, status and counts (never document content). */
  data: Record<string, unknown>;
}

/** Seven days, like jobs. */
const DEFAULT_RETENTION_SECONDS = 7 * 24 * 60 * 60;

/**
 * Enqueues webhook deliveries as BullMQ jobs on the `webhooks` queue, with retries and exponential
 * backoff, and opens their delivery record. Sending the same event twice enqueues it once (the job
 * id is the stable event id). Owns its `Queue`, not the connection.
 */
export class WebhookProducer {
  readonly #queue: Queue;
  readonly #connection: Redis;
  readonly #deliveries: WebhookDeliveries;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #retentionSeconds: number;
  #closing: Promise<void> | undefined;

  constructor(options: WebhookProducerOptions) {
    this.#connection = options.connection;
    this.#queue = new Queue(CONTROL_QUEUE_NAMES.webhooks, { connection: options.connection, prefix: options.prefix });
    this.#retentionSeconds = options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
    this.#deliveries = new WebhookDeliveries(options.connection, options.prefix, this.#retentionSeconds);
    this.#attempts = options.attempts ?? 8;
    this.#backoffMs = options.backoffMs ?? 2_000;
  }

  /** Enqueues the event; resolves with its id once the job is in Redis. */
  async send(notice: WebhookNotice, now = new Date()): Promise<string> {
    const id = webhookEventId(notice.subjectId, notice.type);
    const data: WebhookJobData = {
      event: {
        id,
        object: 'event',
        type: notice.type,
        created_at: Math.floor(now.getTime() / 1000),
        data: notice.data,
      },
      url: notice.url,
      subject_id: notice.subjectId,
    };
    await this.#deliveries.open(notice.subjectId, notice.url, id, notice.type);
    await this.#queue.add(notice.type, data, {
      jobId: id,
      attempts: this.#attempts,
      backoff: { type: 'exponential', delay: this.#backoffMs },
      removeOnComplete: { age: this.#retentionSeconds },
      removeOnFail: { age: this.#retentionSeconds },
    });
    return id;
  }

  /**
   * Forgets a subject's webhooks (the tenant purge): its event jobs, whichever type, and its
   * delivery record. A delivery being sent right now cannot be removed; it finishes or fails.
   */
  async forget(subjectId: string): Promise<void> {
    for (const type of WEBHOOK_EVENT_TYPES) await this.#queue.remove(webhookEventId(subjectId, type)).catch(() => 0);
    await this.#deliveries.delete(subjectId);
  }

  /** Closes the queue (not the connection). Idempotent. */
  close(): Promise<void> {
    // The queue shares the caller's connection: let its start-up finish before the caller quits it.
    this.#closing ??= closeSharedQueue(this.#queue, this.#connection);
    return this.#closing;
  }
}
