import type { RequestCheck } from '@gembatch/batches';
import { GembatchError, TASKS, type CreateJobRequest } from '@gembatch/contracts';
import { compileJsonSchema } from '@gembatch/inference/json-schema';

/** Per-request caps of `POST /v1/jobs` (from the API's environment; see `env.ts`). */
export interface RequestLimits {
  /** Keys in `metadata` (`GEMBATCH_MAX_METADATA_KEYS`). */
  maxMetadataKeys: number;
  /** UTF-8 bytes of `metadata`'s keys and values together (`GEMBATCH_MAX_METADATA_BYTES`). */
  maxMetadataBytes: number;
  /** Bytes of a JSON Schema as JSON text (`GEMBATCH_MAX_SCHEMA_BYTES`). */
  maxSchemaBytes: number;
  /** Nesting of objects and arrays in a JSON Schema (`GEMBATCH_MAX_SCHEMA_DEPTH`). */
  maxSchemaDepth: number;
  /** UTF-8 bytes of inline `text` (`GEMBATCH_MAX_INLINE_TEXT_BYTES`). */
  maxInlineTextBytes: number;
}

/** The parts of a job request the caps look at. */
export type LimitedRequest = Pick<CreateJobRequest, 'task' | 'text' | 'metadata' | 'json_schema' | 'options'>;

/** The caps from the API's environment (`GEMBATCH_MAX_*`). */
export function requestLimitsFromEnv(env: {
  GEMBATCH_MAX_METADATA_KEYS: number;
  GEMBATCH_MAX_METADATA_BYTES: number;
  GEMBATCH_MAX_SCHEMA_BYTES: number;
  GEMBATCH_MAX_SCHEMA_DEPTH: number;
  GEMBATCH_MAX_INLINE_TEXT_BYTES: number;
}): RequestLimits {
  return {
    maxMetadataKeys: env.GEMBATCH_MAX_METADATA_KEYS,
    maxMetadataBytes: env.GEMBATCH_MAX_METADATA_BYTES,
    maxSchemaBytes: env.GEMBATCH_MAX_SCHEMA_BYTES,
    maxSchemaDepth: env.GEMBATCH_MAX_SCHEMA_DEPTH,
    maxInlineTextBytes: env.GEMBATCH_MAX_INLINE_TEXT_BYTES,
  };
}

/** The same caps for every request line of a batch (`/v1/jobs` and chat lines alike), as the batch feeder's check. */
export function batchRequestCheck(limits: RequestLimits): RequestCheck {
  return (plan) =>
    checkRequestLimits(
      {
        task: plan.task,
        options: plan.options,
        ...(plan.input.type === 'text' ? { text: plan.input.text } : {}),
        ...(plan.metadata ? { metadata: plan.metadata } : {}),
        ...(plan.jsonSchema ? { json_schema: plan.jsonSchema } : {}),
      },
      limits,
    );
}

/**
 * Refuses a job request over any cap with a 400 that names the field, the size and the variable
 * that sets the limit; then compiles each JSON Schema (`json_schema`, the `extract` task's
 * `options.schema`) with the worker's validator, so a schema the worker could not run (a pattern
 * without a linear-time engine → `GB_ERR_SCHEMA_UNSUPPORTED`) fails here, not as a failed job.
 * Metadata is stored with the job for its retention, and schemas are compiled and turned into
 * grammars on the workers: unbounded, one request could hold megabytes or exhaust a stack.
 */
export function checkRequestLimits(body: LimitedRequest, limits: RequestLimits): void {
  if (body.metadata) {
    const keys = Object.keys(body.metadata);
    if (keys.length > limits.maxMetadataKeys)
      tooLarge('metadata', `${keys.length} keys`, `${limits.maxMetadataKeys} keys`, 'GEMBATCH_MAX_METADATA_KEYS');
    const bytes = keys.reduce(
      (sum, key) => sum + Buffer.byteLength(key) + Buffer.byteLength(body.metadata?.[key] ?? ''),
      0,
    );
    if (bytes > limits.maxMetadataBytes)
      tooLarge('metadata', `${bytes} bytes`, `${limits.maxMetadataBytes} bytes`, 'GEMBATCH_MAX_METADATA_BYTES');
  }
  if (body.text !== undefined) {
    const bytes = Buffer.byteLength(body.text);
    if (bytes > limits.maxInlineTextBytes)
      tooLarge(
        'text',
        `${bytes} bytes`,
        `${limits.maxInlineTextBytes} bytes; upload larger documents with POST /v1/files`,
        'GEMBATCH_MAX_INLINE_TEXT_BYTES',
      );
  }
  const schemas: Array<[string, unknown]> = [['json_schema', body.json_schema]];
  const schemaOption = TASKS[body.task].schemaOption;
  if (schemaOption !== undefined) schemas.push([`options.${schemaOption}`, body.options?.[schemaOption]]);
  for (const [field, schema] of schemas) {
    if (schema === undefined || schema === null || typeof schema !== 'object') continue;
    const depth = jsonDepth(schema, limits.maxSchemaDepth);
    if (depth > limits.maxSchemaDepth)
      tooLarge(
        field,
        `more than ${limits.maxSchemaDepth} levels deep`,
        `${limits.maxSchemaDepth} levels`,
        'GEMBATCH_MAX_SCHEMA_DEPTH',
      );
    const bytes = Buffer.byteLength(JSON.stringify(schema));
    if (bytes > limits.maxSchemaBytes)
      tooLarge(field, `${bytes} bytes`, `${limits.maxSchemaBytes} bytes`, 'GEMBATCH_MAX_SCHEMA_BYTES');
    compileJsonSchema(schema as Record<string, unknown>, field);
  }
}

function tooLarge(field: string, actual: string, limit: string, variable: string): never {
  throw new GembatchError('GB_ERR_BAD_REQUEST', `${field}: ${actual}; the limit is ${limit} (${variable})`, {
    details: { field, limit: variable },
  });
}

/**
 * Nesting depth of objects and arrays in `value` (a scalar is 0, `{}` is 1), walked without
 * recursion and given up once past `stopAfter`, so a 100,000-deep document costs no stack and
 * little time.
 */
function jsonDepth(value: unknown, stopAfter: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (node === null || typeof node !== 'object') continue;
    const level = depth + 1;
    if (level > deepest) deepest = level;
    if (deepest > stopAfter) return deepest;
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, level]);
  }
  return deepest;
}
