import { describe, expect } from 'vitest';
import { closeAfterTest, openTestRedis, redisTest } from '@gembatch/testing';
import { startApi } from './api-harness.ts';

const JOB = { method: 'POST' as const, url: '/v1/jobs', payload: { text: 'A short note.', task: 'summarize' } };

describe('a Redis master that refuses writes', () => {
  redisTest(
    'NOREPLICAS (min-replicas-to-write with no replica, as an isolated old master) answers 503, retryable; writes again once it accepts them',
    async ({ redis }) => {
      const { app } = await startApi(redis);
      const admin = closeAfterTest(openTestRedis(redis.url, { name: `${redis.prefix}:admin` }));
      // This file's Redis is its own, so the setting touches no other test.
      await admin.config('SET', 'min-replicas-to-write', '1');
      try {
        const refused = await app.inject(JOB);
        expect(refused.statusCode).toBe(503);
        expect(refused.json().error.code).toBe('GB_ERR_SERVICE_UNAVAILABLE');
      } finally {
        await admin.config('SET', 'min-replicas-to-write', '0');
      }
      const accepted = await app.inject(JOB);
      expect(accepted.statusCode).toBe(202);
      expect((await app.inject({ method: 'GET', url: `/v1/jobs/${accepted.json().id}` })).statusCode).toBe(200);
    },
  );
});
