import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { RE2JS } from 're2js';
import { GembatchError } from '@gembatch/contracts';

/**
 * Validators for callers' JSON Schemas (`json_schema`, the `extract` task's `options.schema`),
 * safe to run on a node shared by every tenant:
 *
 * - `pattern`, `patternProperties` and `propertyNames` regexes run on RE2 (re2js, pure JS), whose
 *   time is linear in the input. With JS `RegExp`, `^(\w+\s?)*$` against 40 characters never
 *   finished and froze the node (issue 9). Patterns RE2 cannot run (look-arounds, back-references)
 *   are refused with `GB_ERR_SCHEMA_UNSUPPORTED`.
 * - One ajv instance per schema: two tenants' schemas with the same `$id` no longer collide
 *   ("schema with key or id … already exists"), and dropping a validator frees everything ajv
 *   kept for it.
 * - A least-recently-used cache of `VALIDATOR_CACHE_SIZE` validators keyed by the schema's hash,
 *   so 2,000 distinct schemas no longer pile up in one ever-growing ajv.
 */

/** A compiled schema: `validate` and a readable message for its last errors. */
export interface JsonSchemaValidator {
  validate: ValidateFunction;
  /** The errors of the last `validate` call as one line (`output/code must match pattern "…"`). */
  errorsText: (errors: ErrorObject[] | null | undefined) => string;
}

/**
 * Validators kept. Why 64: a batch or a schedule reuses a handful of schemas; each entry is one
 * ajv instance with its compiled code (tens of KB), so 64 bound the cache to a few MB.
 */
export const VALIDATOR_CACHE_SIZE = 64;

const cache = new Map<string, JsonSchemaValidator>();

/**
 * Checks schemas against the JSON Schema meta-schema, shared: compiling the meta-schema costs
 * ~60 ms, which each per-schema instance would otherwise pay again. It never compiles a caller's
 * schema, so nothing of theirs is kept in it.
 */
const metaSchemaChecker = new Ajv({ allErrors: true, strict: false, logger: false });

/** ajv's `code.regExp` hook: RE2 semantics (linear time), JS syntax translated by re2js. */
function re2RegExp(pattern: string): { test(value: string): boolean; toString(): string } {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (error) {
    throw new UnsupportedPattern(pattern, error);
  }
  // ajv keys its scope values by `toString()`: two patterns must never share a key.
  return { test: (value) => compiled.matcher(value).find(), toString: () => `re2:${pattern}` };
}
re2RegExp.code = 're2js';

class UnsupportedPattern extends Error {
  constructor(
    readonly pattern: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/**
 * The validator of `schema`, compiled once and cached. Throws `GB_ERR_SCHEMA_UNSUPPORTED` for a
 * pattern the linear-time engine cannot run (the message names it), `GB_ERR_BAD_REQUEST` for a
 * schema that is not valid JSON Schema. `field` names the request field in messages. Defaults to
 * `json_schema`.
 */
export function compileJsonSchema(schema: Record<string, unknown>, field = 'json_schema'): JsonSchemaValidator {
  const text = JSON.stringify(schema);
  const key = createHash('sha256').update(text).digest('hex');
  const cached = cache.get(key);
  if (cached) {
    // Most recently used last: the first key is the one to evict.
    cache.delete(key);
    cache.set(key, cached);
    return cached;
  }
  let validate: ValidateFunction;
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    logger: false,
    validateSchema: false,
    code: { regExp: re2RegExp },
  });
  try {
    if (!metaSchemaChecker.validateSchema(schema))
      throw new Error(metaSchemaChecker.errorsText(metaSchemaChecker.errors, { dataVar: 'schema' }));
    validate = ajv.compile(schema);
  } catch (error) {
    if (error instanceof UnsupportedPattern) {
      throw new GembatchError(
        'GB_ERR_SCHEMA_UNSUPPORTED',
        `${field}: the pattern ${JSON.stringify(error.pattern.slice(0, 200))} is not supported (${error.message}); patterns run on a linear-time engine without look-arounds or back-references`,
        { details: { field } },
      );
    }
    if (error instanceof RangeError) {
      throw new GembatchError(
        'GB_ERR_SCHEMA_UNSUPPORTED',
        `${field}: the JSON Schema is nested too deeply to compile`,
        { details: { field } },
      );
    }
    throw new GembatchError(
      'GB_ERR_BAD_REQUEST',
      `${field}: the JSON Schema is invalid: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error, details: { field } },
    );
  }
  const validator: JsonSchemaValidator = {
    validate,
    errorsText: (errors) => ajv.errorsText(errors, { separator: '; ', dataVar: 'output' }),
  };
  if (cache.size >= VALIDATOR_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(key, validator);
  return validator;
}

/** Validators now cached (at most `VALIDATOR_CACHE_SIZE`). */
export function cachedValidatorCount(): number {
  return cache.size;
}
