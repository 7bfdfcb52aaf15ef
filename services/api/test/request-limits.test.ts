import { describe, expect } from 'vitest';
import { redisTest } from '@gembatch/testing';
import { startApi } from './api-harness.ts';

/** A JSON Schema nested `depth` levels deep through `properties` (each level adds two objects). */
function deepSchema(levels: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let index = 0; index < levels; index++) schema = { type: 'object', properties: { a: schema } };
  return schema;
}

describe('POST /v1/jobs bounds (issue 9)', () => {
  redisTest(
    'refuses oversized metadata, inline text and schemas with a 400 naming the limit; accepts what is inside',
    async ({ redis }) => {
      const { app, producer } = await startApi(redis, {
        GEMBATCH_MAX_METADATA_KEYS: '4',
        GEMBATCH_MAX_METADATA_BYTES: '1KiB',
        GEMBATCH_MAX_INLINE_TEXT_BYTES: '64KiB',
      });
      const post = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/jobs', payload });
      const refused = async (payload: Record<string, unknown>, variable: RegExp, code = 'GB_ERR_BAD_REQUEST') => {
        const response = await post(payload);
        expect(response.statusCode).toBe(400);
        expect(response.json().error.code).toBe(code);
        expect(response.json().error.message).toMatch(variable);
      };

      await refused(
        {
          text: 'x',
          task: 'summarize',
          metadata: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, 'v'])),
        },
        /^metadata: 5 keys; the limit is 4 keys \(GEMBATCH_MAX_METADATA_KEYS\)$/,
      );
      await refused(
        { text: 'x', task: 'summarize', metadata: { a: 'v'.repeat(512), b: 'v'.repeat(512), c: 'v' } },
        /^metadata: 1028 bytes; .*GEMBATCH_MAX_METADATA_BYTES/,
      );
      // 40,000 two-byte characters: under any character cap, over the byte cap.
      await refused(
        { text: 'é'.repeat(40_000), task: 'summarize' },
        /^text: 80000 bytes; the limit is 65536 bytes.*GEMBATCH_MAX_INLINE_TEXT_BYTES/,
      );
      // The 2,000-deep schema, through both ways a schema arrives.
      await refused(
        { text: 'x', task: 'prompt', prompt: 'p', json_schema: deepSchema(2_000) },
        /^json_schema: more than 64 levels deep.*GEMBATCH_MAX_SCHEMA_DEPTH/,
      );
      await refused(
        { text: 'x', task: 'extract', options: { schema: deepSchema(2_000) } },
        /^options\.schema: more than 64 levels deep.*GEMBATCH_MAX_SCHEMA_DEPTH/,
      );
      const wide = {
        type: 'object',
        properties: Object.fromEntries(Array.from({ length: 3_000 }, (_, i) => [`field_${i}`, { type: 'string' }])),
      };
      await refused(
        { text: 'x', task: 'extract', options: { schema: wide } },
        /^options\.schema: \d+ bytes; the limit is 65536 bytes \(GEMBATCH_MAX_SCHEMA_BYTES\)$/,
      );
      // Patterns RE2 cannot run are refused at submission, never a failed (or frozen) job.
      await refused(
        {
          text: 'x',
          task: 'prompt',
          prompt: 'p',
          json_schema: { type: 'object', properties: { a: { type: 'string', pattern: '(?=a)a' } } },
        },
        /^json_schema: the pattern/,
        'GB_ERR_SCHEMA_UNSUPPORTED',
      );
      await refused(
        {
          text: 'x',
          task: 'extract',
          options: { schema: { type: 'object', patternProperties: { '(a)\\1': { type: 'string' } } } },
        },
        /^options\.schema: the pattern/,
        'GB_ERR_SCHEMA_UNSUPPORTED',
      );
      expect(await producer.queues.generate.count()).toBe(0);

      // The ReDoS pattern runs on RE2 in linear time, so it is accepted; so is a 30-deep schema.
      const started = performance.now();
      const redos = await post({
        text: 'x',
        task: 'extract',
        options: { schema: { type: 'object', properties: { name: { type: 'string', pattern: '^(\\w+\\s?)*$' } } } },
      });
      expect(redos.statusCode).toBe(202);
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(
        (
          await post({
            text: 'é'.repeat(30_000),
            task: 'prompt',
            prompt: 'p',
            json_schema: deepSchema(30),
            metadata: { a: 'b', c: 'd' },
          })
        ).statusCode,
      ).toBe(202);
      // Two tenants (here: two requests) may use the same $id with different schemas.
      for (const type of ['string', 'number']) {
        expect(
          (
            await post({
              text: 'x',
              task: 'extract',
              options: { schema: { $id: 'https://example.com/s', type: 'object', properties: { v: { type } } } },
            })
          ).statusCode,
        ).toBe(202);
      }
      expect(await producer.queues.generate.count()).toBe(4);
    },
  );
});
