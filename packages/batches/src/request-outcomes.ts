import { ERROR_CODES, isErrorCode, type ErrorBody } from '@gembatch/contracts';

/**
 * What became of one request, as stored per batch. A job's outcome is stored once under its job
 * id (`redisKeys.batchOutcomes`) and read by every request that shares the job; a request that
 * never became a job (a bad body, a missing file) stores its error inline in the request hash.
 */
export type RequestOutcome =
  | { ok: true; /** Blob address of the job's result document. */ sha: string; /** Unix ms the job finished. */ at: number; /** Tokens the job read and generated (counted once per job into the batch's `usage`). */ usage?: { prompt_tokens: number; generated_tokens: number } }
  | { ok: false; code: ErrorBody['code']; message: string; at: number };

/** Request-hash values that are inline errors start with this (job ids start with `job_`). */
const INLINE_ERROR = '!';

export function encodeOutcome(outcome: RequestOutcome): string {
  return JSON.stringify(outcome);
}

export function decodeOutcome(raw: string): RequestOutcome {
  const value = JSON.parse(raw) as RequestOutcome;
  if (!value.ok && !isErrorCode(value.code)) return { ok: false, code: 'GB_ERR_INTERNAL', message: value.message, at: value.at };
  return value;
}

export function encodeInlineError(code: ErrorBody['code'], message: string): string {
  return INLINE_ERROR + encodeOutcome({ ok: false, code, message, at: Date.now() });
}

/** A request-hash value: the job id the request runs as, or its inline error. */
export function decodeRequestValue(raw: string): { jobId: string } | { outcome: RequestOutcome } {
  return raw.startsWith(INLINE_ERROR) ? { outcome: decodeOutcome(raw.slice(1)) } : { jobId: raw };
}

/** The HTTP status a request with this error code would have had on its own. */
export function statusOf(code: ErrorBody['code']): number {
  return ERROR_CODES[code].httpStatus;
}
