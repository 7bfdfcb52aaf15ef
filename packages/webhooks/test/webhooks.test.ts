import { randomBytes } from 'node:crypto';
import { describe, expect, vi } from 'vitest';
import { ConfigError } from '@gembatch/config';
import type { GembatchError } from '@gembatch/contracts';
import {
  closeAfterTest,
  findFreePort,
  openTestRedis,
  redisTest,
  startWebhookReceiver,
  type RedisTestContext,
} from '@gembatch/testing';
import { createLogger } from '@gembatch/telemetry';
import {
  loadWebhookConfig,
  startWebhookWorker,
  WebhookAllowlist,
  WebhookDeliveries,
  WebhookProducer,
  type WebhookConfig,
  type WebhookDelivererOptions,
} from '../src/index.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const RETENTION_SECONDS = 3_600;
const silent = createLogger({ service: 'test', level: 'silent' });

/** Producer, delivery worker and record reader on the test's Redis, all closed after the test. */
function stackFor(redis: RedisTestContext, config: WebhookConfig, ready?: WebhookDelivererOptions['ready']) {
  const connection = closeAfterTest(openTestRedis(redis.url));
  const producer = closeAfterTest(
    new WebhookProducer({
      connection,
      prefix: redis.prefix,
      attempts: config.attempts,
      backoffMs: config.backoffMs,
      retentionSeconds: RETENTION_SECONDS,
    }),
  );
  const worker = startWebhookWorker({
    connection: closeAfterTest(openTestRedis(redis.url, { blocking: true })),
    redis: connection,
    prefix: redis.prefix,
    config,
    logger: silent,
    retentionSeconds: RETENTION_SECONDS,
    ...(ready ? { ready } : {}),
  });
  if (worker) closeAfterTest(worker);
  return { producer, worker, deliveries: new WebhookDeliveries(connection, redis.prefix, RETENTION_SECONDS) };
}

describe('webhook allowlist and configuration', () => {
  redisTest('allows only listed origins and path prefixes, refusing the rest with GB_ERR_WEBHOOK_NOT_ALLOWED', () => {
    const list = WebhookAllowlist.parse(['https://hooks.example.com', 'http://127.0.0.1:9000/gembatch/']);
    expect(list.allows('https://hooks.example.com/any/path?x=1')).toBe(true);
    expect(list.allows('http://127.0.0.1:9000/gembatch/batch-done')).toBe(true);
    expect(list.allows('http://127.0.0.1:9000/gembatch')).toBe(false);
    expect(list.allows('http://127.0.0.1:9000/gembatchx')).toBe(false);
    expect(list.allows('http://127.0.0.1:9001/gembatch/x')).toBe(false);
    expect(list.allows('http://hooks.example.com/')).toBe(false);
    expect(list.allows('https://hooks.example.com.evil.test/')).toBe(false);
    expect(list.allows('https://user:pw@hooks.example.com/')).toBe(false);
    expect(list.allows('not a url')).toBe(false);
    const refusal = (() => {
      try {
        list.assertAllowed('https://169.254.169.254/latest/meta-data?token=s3cret');
      } catch (error) {
        return error as GembatchError;
      }
    })();
    expect(refusal?.code).toBe('GB_ERR_WEBHOOK_NOT_ALLOWED');
    expect(refusal?.message).not.toContain('s3cret');
    expect(() => WebhookAllowlist.none.assertAllowed('https://hooks.example.com/')).toThrow(/not enabled/);
  });

  redisTest('start-up validation names each bad variable and never echoes a value', () => {
    const bad = (() => {
      try {
        loadWebhookConfig({
          GEMBATCH_WEBHOOK_ALLOWED_URLS: 'ftp://files.example.com/,https://ok.example.com',
          GEMBATCH_WEBHOOK_SECRET: 'whsec_dG9vc2hvcnQ=',
        });
      } catch (error) {
        return error as ConfigError;
      }
    })();
    expect(bad).toBeInstanceOf(ConfigError);
    expect(bad?.problems).toEqual([
      'GEMBATCH_WEBHOOK_ALLOWED_URLS: entry 1 must be an http:// or https:// URL',
      'GEMBATCH_WEBHOOK_SECRET: must decode to at least 24 bytes',
    ]);
    expect(() => loadWebhookConfig({ GEMBATCH_WEBHOOK_ALLOWED_URLS: 'https://ok.example.com' })).toThrow(
      /GEMBATCH_WEBHOOK_SECRET: required/,
    );
    expect(() => loadWebhookConfig({ GEMBATCH_WEBHOOK_SECRET: 'plain-secret-without-prefix-000000' })).toThrow(
      /whsec_/,
    );
    const off = loadWebhookConfig({});
    expect(off.allowlist.enabled).toBe(false);
    expect(
      loadWebhookConfig({
        GEMBATCH_WEBHOOK_ALLOWED_URLS: 'https://ok.example.com',
        GEMBATCH_WEBHOOK_SECRET: SECRET,
      }).allowlist.allows('https://ok.example.com/x'),
    ).toBe(true);
  });
});

describe('webhook delivery', () => {
  redisTest(
    'signs per Standard Webhooks, retries after a 500 with the same webhook-id, and records every attempt',
    async ({ redis }) => {
      // The first request gets a 500, the second a 200: one retry after backoff.
      const receiver = closeAfterTest(
        await startWebhookReceiver({
          secret: SECRET,
          answer: (index, verified) => (!verified ? 401 : index === 0 ? 500 : 200),
        }),
      );
      const config = loadWebhookConfig({
        GEMBATCH_WEBHOOK_ALLOWED_URLS: receiver.url,
        GEMBATCH_WEBHOOK_SECRET: SECRET,
        GEMBATCH_WEBHOOK_BACKOFF_MS: '50',
        GEMBATCH_WEBHOOK_ATTEMPTS: '3',
      });
      const { producer, deliveries } = stackFor(redis, config);

      const eventId = await producer.send({
        subjectId: 'batch_1',
        url: receiver.url,
        type: 'batch.completed',
        data: { id: 'batch_1', object: 'batch', status: 'completed' },
      });
      // Sending the same event again (a retried finalizer) does not deliver twice.
      expect(
        await producer.send({
          subjectId: 'batch_1',
          url: receiver.url,
          type: 'batch.completed',
          data: { id: 'batch_1' },
        }),
      ).toBe(eventId);

      const [first, second] = await receiver.waitFor(2);
      expect(first).toMatchObject({ id: eventId, verified: true, answered: 500 });
      expect(second).toMatchObject({ id: eventId, verified: true, answered: 200 });
      expect(second?.body).toMatchObject({
        id: eventId,
        object: 'event',
        type: 'batch.completed',
        data: { id: 'batch_1', object: 'batch', status: 'completed' },
      });

      await vi.waitFor(async () => expect((await deliveries.get('batch_1'))?.status).toBe('delivered'), {
        timeout: 15_000,
        interval: 25,
      });
      const view = await deliveries.get('batch_1');
      expect(view).toMatchObject({
        url: receiver.url,
        event: 'batch.completed',
        event_id: eventId,
        status: 'delivered',
      });
      expect(view?.attempts.map((a) => [a.attempt, a.status_code, a.error])).toEqual([
        [1, 500, 'HTTP 500'],
        [2, 200, undefined],
      ]);
      expect(receiver.received).toHaveLength(2);
    },
  );

  redisTest(
    'a receiver that never answers 2xx leaves the delivery failed after the configured attempts',
    async ({ redis }) => {
      const receiver = closeAfterTest(await startWebhookReceiver({ secret: SECRET, answer: () => 503 }));
      const config = loadWebhookConfig({
        GEMBATCH_WEBHOOK_ALLOWED_URLS: receiver.url,
        GEMBATCH_WEBHOOK_SECRET: SECRET,
        GEMBATCH_WEBHOOK_BACKOFF_MS: '20',
        GEMBATCH_WEBHOOK_ATTEMPTS: '3',
      });
      const { producer, deliveries } = stackFor(redis, config);
      await producer.send({ subjectId: 'batch_2', url: receiver.url, type: 'batch.failed', data: { id: 'batch_2' } });
      await vi.waitFor(async () => expect((await deliveries.get('batch_2'))?.status).toBe('failed'), {
        timeout: 15_000,
        interval: 25,
      });
      expect((await deliveries.get('batch_2'))?.attempts.map((a) => a.status_code)).toEqual([503, 503, 503]);
      expect(receiver.received.every((r) => r.verified)).toBe(true);
    },
  );

  redisTest(
    'a refused connection is recorded by its socket error, and an unlisted URL is never called',
    async ({ redis }) => {
      const receiver = closeAfterTest(await startWebhookReceiver({ secret: SECRET }));
      // A port that was free a moment ago: nothing listens there.
      const closed = `http://127.0.0.1:${await findFreePort()}/x`;
      const config = loadWebhookConfig({
        GEMBATCH_WEBHOOK_ALLOWED_URLS: `${receiver.url},${closed}`,
        GEMBATCH_WEBHOOK_SECRET: SECRET,
        GEMBATCH_WEBHOOK_BACKOFF_MS: '20',
        GEMBATCH_WEBHOOK_ATTEMPTS: '2',
      });
      const { producer, deliveries } = stackFor(redis, config);
      await producer.send({ subjectId: 'batch_3', url: closed, type: 'batch.expired', data: { id: 'batch_3' } });
      // Enqueued behind the API's check (e.g. the allowlist shrank since): refused on delivery, not sent.
      await producer.send({
        subjectId: 'batch_4',
        url: 'http://127.0.0.1:9/elsewhere',
        type: 'batch.completed',
        data: { id: 'batch_4' },
      });
      await vi.waitFor(async () => expect((await deliveries.get('batch_3'))?.status).toBe('failed'), {
        timeout: 15_000,
        interval: 25,
      });
      await vi.waitFor(async () => expect((await deliveries.get('batch_4'))?.status).toBe('failed'), {
        timeout: 15_000,
        interval: 25,
      });
      expect((await deliveries.get('batch_3'))?.attempts.map((a) => a.error)).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
      expect((await deliveries.get('batch_4'))?.attempts).toEqual([
        expect.objectContaining({ attempt: 1, error: 'not on the webhook allowlist' }),
      ]);
      expect(receiver.received).toHaveLength(0);
    },
  );

  redisTest(
    'an event enqueued before its batch stored the final status waits for it (no attempt), and one whose batch ended otherwise is dropped unsent',
    async ({ redis }) => {
      const receiver = closeAfterTest(await startWebhookReceiver({ secret: SECRET }));
      const config = loadWebhookConfig({
        GEMBATCH_WEBHOOK_ALLOWED_URLS: receiver.url,
        GEMBATCH_WEBHOOK_SECRET: SECRET,
        GEMBATCH_WEBHOOK_BACKOFF_MS: '20',
        GEMBATCH_WEBHOOK_ATTEMPTS: '20',
      });
      const statuses = new Map<string, string>([
        ['batch_5', 'finalizing'],
        ['batch_6', 'cancelled'],
      ]);
      let asked = 0;
      const { producer, deliveries } = stackFor(redis, config, async (subjectId, event) => {
        asked += 1;
        const status = statuses.get(subjectId);
        if (status === event.data.status) return 'ready';
        return status === 'finalizing' ? 'wait' : 'superseded';
      });
      await producer.send({
        subjectId: 'batch_6',
        url: receiver.url,
        type: 'batch.failed',
        data: { id: 'batch_6', status: 'failed' },
      });
      await producer.send({
        subjectId: 'batch_5',
        url: receiver.url,
        type: 'batch.completed',
        data: { id: 'batch_5', status: 'completed' },
      });
      await vi.waitFor(() => expect(asked).toBeGreaterThanOrEqual(3), { timeout: 15_000, interval: 10 });
      statuses.set('batch_5', 'completed');
      const [event] = await receiver.waitFor(1);
      expect(event).toMatchObject({ verified: true, body: { type: 'batch.completed', data: { id: 'batch_5' } } });
      await vi.waitFor(async () => expect((await deliveries.get('batch_5'))?.status).toBe('delivered'), {
        timeout: 15_000,
        interval: 25,
      });
      expect((await deliveries.get('batch_5'))?.attempts.map((a) => [a.attempt > 1, a.status_code])).toEqual([
        [true, 200],
      ]);
      expect((await deliveries.get('batch_6'))?.attempts).toEqual([]);
      expect(receiver.received).toHaveLength(1);
    },
  );

  redisTest('with webhooks off no worker starts', ({ redis }) => {
    expect(stackFor(redis, loadWebhookConfig({})).worker).toBeUndefined();
  });
});
