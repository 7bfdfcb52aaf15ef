import { createHash } from 'node:crypto';
import { z } from 'zod';

/** The events a batch webhook fires on: its terminal states (the OpenAI Batch API's webhook types). */
export const WEBHOOK_EVENT_TYPES = ['batch.completed', 'batch.failed', 'batch.cancelled', 'batch.expired'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** An optional webhook on a batch or a schedule, as clients send it. */
export const WebhookSpec = z.strictObject({
  /** Where to POST the event; must be on the operator's allowlist. */
  url: z.string().url().max(2048),
});
export type WebhookSpec = z.infer<typeof WebhookSpec>;

/**
 * The body POSTed to the receiver, in OpenAI's webhook event shape: `{id, object: "event", type,
 * created_at, data}`. `data` holds ids, status and counts only, never document content.
 */
export const WebhookEvent = z.object({
  id: z.string(),
  object: z.literal('event'),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  /** Unix seconds. */
  created_at: z.number().int(),
  data: z.record(z.string(), z.unknown()),
});
export type WebhookEvent = z.infer<typeof WebhookEvent>;

/** What a delivery job carries. */
export const WebhookJobData = z.object({
  event: WebhookEvent,
  url: z.string(),
  /** The batch the event is about; its delivery record is keyed by this id. */
  subject_id: z.string(),
});
export type WebhookJobData = z.infer<typeof WebhookJobData>;

/**
 * The event id for `type` on `subjectId`: stable, so a batch finalized twice (a retried finalizer)
 * enqueues one delivery, and the receiver can deduplicate on `webhook-id`.
 */
export function webhookEventId(subjectId: string, type: WebhookEventType): string {
  return `evt_${createHash('sha256').update(`${subjectId}\n${type}`).digest('hex').slice(0, 32)}`;
}
