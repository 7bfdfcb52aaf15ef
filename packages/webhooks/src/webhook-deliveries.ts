import type { Redis } from 'ioredis';
import { redisKeys } from '@gembatch/contracts';

/** One delivery attempt, as shown on the batch. */
export interface WebhookAttempt {
  /** 1 for the first try. */
  attempt: number;
  /** Unix seconds when the attempt was sent. */
  at: number;
  /** The receiver's HTTP status; absent when no answer came (timeout, refused connection). */
  status_code?: number;
  /** Why the attempt failed (`HTTP 500`, `timeout after 10000 ms`, `ECONNREFUSED`); absent on success. */
  error?: string;
  duration_ms: number;
}

/** A batch's webhook delivery: where, which event, where it stands, and every attempt. */
export interface WebhookDeliveryView {
  url: string;
  event_id: string;
  event: string;
  /** `pending` until a 2xx answer (`delivered`) or the last attempt failed (`failed`). */
  status: 'pending' | 'delivered' | 'failed';
  attempts: WebhookAttempt[];
}

/** Attempts kept per delivery (the configured maximum is lower; this bounds a hostile config). */
const MAX_RECORDED_ATTEMPTS = 100;

/**
 * Delivery records in Redis, one per subject (batch id): a hash with url, event and status, and a
 * list of attempts. Every key carries the retention TTL of the batch it belongs to.
 */
export class WebhookDeliveries {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlSeconds: number;

  constructor(redis: Redis, prefix: string, retentionSeconds: number) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#ttlSeconds = retentionSeconds;
  }

  /** Records a pending delivery of this event (no-op when it is recorded already; another event of the subject replaces it). */
  async open(subjectId: string, url: string, eventId: string, event: string): Promise<void> {
    const key = redisKeys.webhookDelivery(this.#prefix, subjectId);
    if ((await this.#redis.hget(key, 'event_id')) === eventId) return;
    await this.#redis
      .multi()
      .hset(key, { event_id: eventId, url, event, status: 'pending' })
      .expire(key, this.#ttlSeconds)
      .del(redisKeys.webhookAttempts(this.#prefix, subjectId))
      .exec();
  }

  /** Appends an attempt and sets the status it leads to. */
  async record(subjectId: string, attempt: WebhookAttempt, status: WebhookDeliveryView['status']): Promise<void> {
    const key = redisKeys.webhookDelivery(this.#prefix, subjectId);
    const attempts = redisKeys.webhookAttempts(this.#prefix, subjectId);
    await this.#redis
      .multi()
      .rpush(attempts, JSON.stringify(attempt))
      .ltrim(attempts, -MAX_RECORDED_ATTEMPTS, -1)
      .expire(attempts, this.#ttlSeconds)
      .hset(key, 'status', status)
      .expire(key, this.#ttlSeconds)
      .exec();
  }

  /** Deletes the subject's delivery record and attempts (the tenant purge). */
  async delete(subjectId: string): Promise<void> {
    await this.#redis.del(
      redisKeys.webhookDelivery(this.#prefix, subjectId),
      redisKeys.webhookAttempts(this.#prefix, subjectId),
    );
  }

  /** The delivery for `subjectId`, or undefined when the subject has no webhook. */
  async get(subjectId: string): Promise<WebhookDeliveryView | undefined> {
    const [hash, attempts] = await Promise.all([
      this.#redis.hgetall(redisKeys.webhookDelivery(this.#prefix, subjectId)),
      this.#redis.lrange(redisKeys.webhookAttempts(this.#prefix, subjectId), 0, -1),
    ]);
    if (!hash.event_id || !hash.url) return undefined;
    const status = hash.status === 'delivered' || hash.status === 'failed' ? hash.status : 'pending';
    return {
      url: hash.url,
      event_id: hash.event_id,
      event: hash.event ?? '',
      status,
      attempts: attempts.map((line) => JSON.parse(line) as WebhookAttempt),
    };
  }
}
