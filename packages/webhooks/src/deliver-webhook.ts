import { Webhook } from 'standardwebhooks';
import { GembatchError } from '@gembatch/contracts';
import type { Processor } from '@gembatch/queue';
import type { WebhookAllowlist } from './webhook-allowlist.ts';
import type { WebhookDeliveries } from './webhook-deliveries.ts';
import type { WebhookEvent, WebhookJobData } from './webhook-event.ts';

export interface WebhookDelivererOptions {
  allowlist: WebhookAllowlist;
  /** `whsec_…` Standard Webhooks secret. */
  secret: string;
  deliveries: WebhookDeliveries;
  /** Per-attempt deadline (ms). */
  timeoutMs: number;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /**
   * Whether the event may go out: `ready` (send), `wait` (its subject has not reached the state yet:
   * retried with backoff, no attempt recorded), `superseded` (the subject ended otherwise: dropped
   * unsent). Events are enqueued just before their batch's final status is stored, so a crash in
   * between cannot lose them. Defaults to always `ready`.
   */
  ready?: (subjectId: string, event: WebhookEvent) => Promise<'ready' | 'wait' | 'superseded'>;
}

/** What a delivery job returns (kept as the job's return value): the receiver's status, or null when superseded. */
export interface WebhookDeliveryResult {
  status_code: number | null;
}

/**
 * The delivery processor: POSTs the event signed per Standard Webhooks (`webhook-id` = event id,
 * `webhook-timestamp` = this attempt's time, `webhook-signature` = `v1,<HMAC-SHA256>`), records the
 * attempt on the subject, and throws a retryable `GB_ERR_WEBHOOK_DELIVERY` on anything but 2xx so
 * the queue retries with backoff. Redirects are not followed (they could lead off the allowlist),
 * and the URL is checked against the allowlist again on every attempt.
 */
export function createWebhookDeliverer(
  options: WebhookDelivererOptions,
): Processor<WebhookJobData, WebhookDeliveryResult> {
  const signer = new Webhook(options.secret);
  const doFetch = options.fetch ?? fetch;
  return async (payload, ctx) => {
    const final = ctx.attempt >= ctx.maxAttempts;
    if (!options.allowlist.allows(payload.url)) {
      await options.deliveries.record(
        payload.subject_id,
        {
          attempt: ctx.attempt,
          at: Math.floor(Date.now() / 1000),
          error: 'not on the webhook allowlist',
          duration_ms: 0,
        },
        'failed',
      );
      throw new GembatchError('GB_ERR_WEBHOOK_NOT_ALLOWED', 'the webhook URL is no longer on the allowlist', {
        retryable: false,
      });
    }
    const readiness = (await options.ready?.(payload.subject_id, payload.event)) ?? 'ready';
    if (readiness === 'superseded') {
      ctx.log.info(
        { subjectId: payload.subject_id, eventId: payload.event.id, type: payload.event.type },
        'webhook event superseded; not sent',
      );
      return { status_code: null };
    }
    if (readiness === 'wait')
      throw new GembatchError('GB_ERR_WEBHOOK_DELIVERY', 'the batch has not stored its final status yet');
    const body = JSON.stringify(payload.event);
    const sentAt = new Date();
    const started = performance.now();
    let statusCode: number | undefined;
    let failure: string | undefined;
    try {
      const response = await doFetch(payload.url, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'gembatch-webhooks/1',
          'webhook-id': payload.event.id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': signer.sign(payload.event.id, sentAt, body),
        },
        body,
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(options.timeoutMs)]),
      });
      statusCode = response.status;
      // The answer's body is not read: receivers owe us only a status.
      await response.body?.cancel().catch(() => undefined);
      if (response.status < 200 || response.status > 299) failure = `HTTP ${response.status}`;
    } catch (error) {
      failure = describeFetchError(error, options.timeoutMs);
    }
    const attempt = {
      attempt: ctx.attempt,
      at: Math.floor(sentAt.getTime() / 1000),
      ...(statusCode !== undefined ? { status_code: statusCode } : {}),
      ...(failure ? { error: failure } : {}),
      duration_ms: Math.round(performance.now() - started),
    };
    await options.deliveries.record(
      payload.subject_id,
      attempt,
      failure ? (final ? 'failed' : 'pending') : 'delivered',
    );
    ctx.log.info(
      {
        subjectId: payload.subject_id,
        eventId: payload.event.id,
        type: payload.event.type,
        statusCode,
        ms: attempt.duration_ms,
        ok: !failure,
      },
      'webhook attempt',
    );
    if (failure) throw new GembatchError('GB_ERR_WEBHOOK_DELIVERY', `webhook delivery failed: ${failure}`);
    return { status_code: statusCode as number };
  };
}

/** A short, content-free reason: the timeout, or the socket error code. */
function describeFetchError(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return error.name === 'TimeoutError' ? `timeout after ${timeoutMs} ms` : 'aborted';
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  // Why 200: undici's own messages ("bad port") are short; the cap keeps a record small.
  if (typeof cause?.message === 'string') return cause.message.slice(0, 200);
  return error instanceof Error ? error.name : 'request failed';
}
