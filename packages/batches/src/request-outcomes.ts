import type { Redis } from 'ioredis';
import { ERROR_CODES, isErrorCode, redisKeys, type ErrorBody } from '@gembatch/contracts';

/**
 * What became of one request, as stored per batch. A job's outcome is stored once under its job
 * id (`redisKeys.batchOutcomes`) and read by every request that shares the job; a request that
 * never became a job (a bad body, a missing file) stores its error inline in the request hash.
 */
export type RequestOutcome =
  | {
      ok: true /** Blob address of the job's result document. */;
      sha: string /** Unix ms the job finished. */;
      at: number /** Tokens the job read and generated (counted once per job into the batch's `usage`). */;
      usage?: { prompt_tokens: number; generated_tokens: number };
    }
  | { ok: false; code: ErrorBody['code']; message: string; at: number };

/** Request-hash values that are inline errors start with this (job ids start with `job_`). */
const INLINE_ERROR = '!';

export function encodeOutcome(outcome: RequestOutcome): string {
  return JSON.stringify(outcome);
}

export function decodeOutcome(raw: string): RequestOutcome {
  const value = JSON.parse(raw) as RequestOutcome;
  if (!value.ok && !isErrorCode(value.code))
    return { ok: false, code: 'GB_ERR_INTERNAL', message: value.message, at: value.at };
  return value;
}

export function encodeInlineError(code: ErrorBody['code'], message: string): string {
  return INLINE_ERROR + encodeOutcome({ ok: false, code, message, at: Date.now() });
}

/** A request-hash value: the job id the request runs as, or its inline error. */
export function decodeRequestValue(raw: string): { jobId: string } | { outcome: RequestOutcome } {
  return raw.startsWith(INLINE_ERROR) ? { outcome: decodeOutcome(raw.slice(1)) } : { jobId: raw };
}

/** Where one request stands: the job it runs as (if any) and how it ended (if it has). */
export interface RequestState {
  jobId: string | undefined;
  outcome: RequestOutcome | undefined;
}

/**
 * The state of each request of a batch at `indexes` (input line numbers), in that order: two
 * HMGETs, one for the request hash and one for the outcomes of the distinct jobs it names.
 */
export async function readRequestStates(
  redis: Redis,
  prefix: string,
  batchId: string,
  indexes: readonly number[],
): Promise<RequestState[]> {
  const values = await redis.hmget(redisKeys.batchRequests(prefix, batchId), ...indexes.map(String));
  const requests = values.map((raw) => (raw === null ? undefined : decodeRequestValue(raw)));
  const jobIds = [...new Set(requests.flatMap((r) => (r && 'jobId' in r ? [r.jobId] : [])))];
  const outcomes = new Map<string, RequestOutcome>();
  if (jobIds.length > 0) {
    const raw = await redis.hmget(redisKeys.batchOutcomes(prefix, batchId), ...jobIds);
    raw.forEach((value, i) => value !== null && outcomes.set(jobIds[i] as string, decodeOutcome(value)));
  }
  return requests.map((request) => {
    const jobId = request && 'jobId' in request ? request.jobId : undefined;
    return {
      jobId,
      outcome: request && 'outcome' in request ? request.outcome : jobId ? outcomes.get(jobId) : undefined,
    };
  });
}

/** The HTTP status a request with this error code would have had on its own. */
export function statusOf(code: ErrorBody['code']): number {
  return ERROR_CODES[code].httpStatus;
}
