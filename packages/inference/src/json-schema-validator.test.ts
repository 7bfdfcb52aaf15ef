import { describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { cachedValidatorCount, compileJsonSchema, VALIDATOR_CACHE_SIZE } from './json-schema-validator.ts';

function failure(run: () => unknown): GembatchError {
  try {
    run();
  } catch (error) {
    if (error instanceof GembatchError) return error;
    throw error;
  }
  throw new Error('expected a GembatchError');
}

describe('compileJsonSchema', () => {
  it("runs the issue's ReDoS pattern ^(\\w+\\s?)*$ in linear time (JS RegExp never finished on 40 characters)", () => {
    const { validate } = compileJsonSchema({
      type: 'object',
      properties: { name: { type: 'string', pattern: '^(\\w+\\s?)*$' } },
    });
    const started = performance.now();
    expect(validate({ name: `${'a'.repeat(39)}!` })).toBe(false);
    expect(validate({ name: `${'ab '.repeat(300_000)}!` })).toBe(false);
    expect(validate({ name: 'two words' })).toBe(true);
    // Linear: ~50 ms for the 900 KB string on a busy CI box; backtracking would take longer than the universe.
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('applies patternProperties and propertyNames on the same engine, each pattern its own', () => {
    const { validate, errorsText } = compileJsonSchema({
      type: 'object',
      patternProperties: { '^x-(a+)+$': { type: 'number' }, '^y-\\d+$': { type: 'string' } },
      propertyNames: { pattern: '^[a-z0-9-]+$' },
    });
    expect(validate({ 'x-aaa': 1, 'y-12': 'ok' })).toBe(true);
    expect(validate({ 'x-aaa': 'not a number' })).toBe(false);
    expect(validate({ 'y-1': 2 })).toBe(false);
    expect(validate({ Upper: 1 })).toBe(false);
    expect(errorsText(validate.errors)).toMatch(/must match pattern/);
    expect(validate({ [`x-${'a'.repeat(50_000)}!`]: 'x' })).toBe(false);
  });

  it('refuses patterns RE2 cannot run with GB_ERR_SCHEMA_UNSUPPORTED naming the field', () => {
    for (const pattern of ['(?=a)b', '(a)\\1', '(?<!x)y']) {
      const error = failure(() => compileJsonSchema({ type: 'string', pattern }, 'options.schema'));
      expect(error.code).toBe('GB_ERR_SCHEMA_UNSUPPORTED');
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(/^options\.schema: the pattern/);
    }
    expect(failure(() => compileJsonSchema({ type: 'nonsense' })).code).toBe('GB_ERR_BAD_REQUEST');
  });

  it("keeps two tenants' schemas with the same $id apart (one shared ajv answered 'already exists')", () => {
    const a = compileJsonSchema({
      $id: 'https://example.com/record',
      type: 'object',
      properties: { n: { type: 'number' } },
      required: ['n'],
    });
    const b = compileJsonSchema({
      $id: 'https://example.com/record',
      type: 'object',
      properties: { s: { type: 'string' } },
      required: ['s'],
    });
    expect(a.validate({ n: 1 })).toBe(true);
    expect(a.validate({ s: 'x' })).toBe(false);
    expect(b.validate({ s: 'x' })).toBe(true);
    expect(b.validate({ n: 1 })).toBe(false);
  });

  it('bounds its cache: 4 × VALIDATOR_CACHE_SIZE distinct schemas keep at most VALIDATOR_CACHE_SIZE validators, recently used ones stay', () => {
    const hot = { type: 'object', properties: { hot: { const: true } } };
    const first = compileJsonSchema(hot);
    // Why 4×: enough to evict the whole cache several times over; each compile costs ms, so thousands time out under load.
    for (let index = 0; index < 4 * VALIDATOR_CACHE_SIZE; index++) {
      compileJsonSchema({
        $id: `urn:schema:${index}`,
        type: 'object',
        properties: { [`field${index}`]: { type: 'string', pattern: `^v${index}$` } },
      });
      if (index % 10 === 0) expect(compileJsonSchema(hot)).toBe(first);
      expect(cachedValidatorCount()).toBeLessThanOrEqual(VALIDATOR_CACHE_SIZE);
    }
    expect(cachedValidatorCount()).toBe(VALIDATOR_CACHE_SIZE);
  });
});
