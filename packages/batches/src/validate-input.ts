import type { Redis } from 'ioredis';
import { redisKeys, toGembatchError } from '@gembatch/contracts';
import type { BatchEndpoint, BatchValidationError } from './batch-schemas.ts';
import { readInputLines } from './input-lines.ts';
import { encodeInlineError } from './request-outcomes.ts';
import { parseInputLine, planRequest, type RequestCheck } from './request-mapping.ts';

/** Validation errors kept on the batch (the count of the rest is reported in the last one). */
const MAX_REPORTED_ERRORS = 100;
/** Lines whose custom_ids are checked for duplicates per Redis round trip. */
const ID_CHUNK = 1_000;

export interface ValidationResult {
  /** Request lines in the file. */
  total: number;
  /** Requests whose body failed validation; they are recorded as errors and never become jobs. */
  requestErrors: number;
  /** Problems that make the whole file unusable (batch → `failed`), with line numbers. */
  fatal: BatchValidationError[];
}

export interface ValidateInputOptions {
  redis: Redis;
  prefix: string;
  batchId: string;
  endpoint: BatchEndpoint;
  /** Local path of the input JSONL. */
  path: string;
  /** Most request lines a batch may have. */
  maxRequests: number;
  /** The operator's per-request caps; a request over one goes to the error file. Defaults to none. */
  checkRequest?: RequestCheck;
}

/**
 * Validates an input file as a stream, one line at a time: every line must be JSON with a unique
 * `custom_id`, `method: "POST"` and the batch's `url` (else the batch fails, each error with its
 * line number); a body that fails its endpoint's checks is recorded as that request's error (it
 * lands in the error file and the rest of the batch runs). Uniqueness is checked in Redis, so
 * memory stays flat however long the file is. Safe to run again from scratch after a crash.
 */
export async function validateInput(options: ValidateInputOptions): Promise<ValidationResult> {
  const { redis, prefix, batchId } = options;
  const idsKey = redisKeys.batchCustomIds(prefix, batchId);
  const requestsKey = redisKeys.batchRequests(prefix, batchId);
  await redis.del(idsKey, requestsKey);
  const fatal: BatchValidationError[] = [];
  let fatalCount = 0;
  const report = (error: BatchValidationError) => {
    fatalCount += 1;
    if (fatal.length < MAX_REPORTED_ERRORS) fatal.push(error);
  };
  let total = 0;
  let requestErrors = 0;
  let ids: Array<{ id: string; line: number }> = [];
  let errors: Array<[string, string]> = [];
  const flush = async () => {
    if (ids.length > 0) {
      const pipeline = redis.pipeline();
      for (const { id } of ids) pipeline.sadd(idsKey, id);
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([, added], i) => {
        const entry = ids[i] as { id: string; line: number };
        if (added === 0)
          report({
            code: 'GB_ERR_BATCH_INPUT_INVALID',
            message: `line ${entry.line}: custom_id ${JSON.stringify(entry.id.slice(0, 100))} is used by an earlier line; custom_ids must be unique`,
            param: 'custom_id',
            line: entry.line,
          });
      });
      ids = [];
    }
    if (errors.length > 0) {
      await redis.hset(requestsKey, Object.fromEntries(errors));
      errors = [];
    }
  };

  try {
    for await (const line of readInputLines(options.path)) {
      total += 1;
      if (total > options.maxRequests) {
        report({
          code: 'GB_ERR_BATCH_INPUT_INVALID',
          message: `the file has more than ${options.maxRequests} requests`,
          param: null,
          line: line.lineNumber,
        });
        break;
      }
      let request;
      try {
        request = parseInputLine(line.text);
      } catch (error) {
        report({
          code: 'GB_ERR_BATCH_INPUT_INVALID',
          message: `line ${line.lineNumber}: ${toGembatchError(error).message}`,
          param: null,
          line: line.lineNumber,
        });
        continue;
      }
      if (request.url !== options.endpoint) {
        report({
          code: 'GB_ERR_BATCH_INPUT_INVALID',
          message: `line ${line.lineNumber}: url ${request.url} differs from the batch endpoint ${options.endpoint}`,
          param: 'url',
          line: line.lineNumber,
        });
        continue;
      }
      ids.push({ id: request.custom_id, line: line.lineNumber });
      try {
        planRequest(options.endpoint, request.body, options.checkRequest);
      } catch (error) {
        const problem = toGembatchError(error);
        requestErrors += 1;
        errors.push([
          String(line.index),
          encodeInlineError(problem.code, `line ${line.lineNumber}: ${problem.message}`),
        ]);
      }
      if (ids.length >= ID_CHUNK || errors.length >= ID_CHUNK) await flush();
    }
    await flush();
  } catch (error) {
    const problem = toGembatchError(error);
    if (problem.code !== 'GB_ERR_BATCH_INPUT_INVALID') throw error;
    const line = typeof problem.details?.line === 'number' ? problem.details.line : null;
    report({ code: problem.code, message: problem.message, param: null, line });
  } finally {
    await redis.del(idsKey);
  }
  // Duplicates are found a chunk later than other errors: report in line order.
  fatal.sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER));
  if (total === 0)
    report({
      code: 'GB_ERR_BATCH_INPUT_INVALID',
      message: 'the input file has no request lines',
      param: null,
      line: null,
    });
  if (fatalCount > fatal.length) {
    const last = fatal.at(-1) as BatchValidationError;
    fatal[fatal.length - 1] = { ...last, message: `${last.message} (and ${fatalCount - fatal.length} more errors)` };
  }
  if (fatal.length > 0) await redis.del(requestsKey);
  return { total, requestErrors, fatal };
}
