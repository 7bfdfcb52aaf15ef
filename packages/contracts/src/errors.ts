/**
 * Every error code gembatch can report, defined once. Code is the stable contract: clients and
 * services branch on it, never on message text. `retryable` says whether BullMQ should try the
 * job again; `httpStatus` is what the API answers when the error reaches a request.
 */
export const ERROR_CODES = {
  GB_ERR_BAD_REQUEST: { retryable: false, httpStatus: 400, description: 'The request failed validation.' },
  GB_ERR_UNAUTHORIZED: { retryable: false, httpStatus: 401, description: 'Missing or unknown API key.' },
  GB_ERR_NOT_FOUND: { retryable: false, httpStatus: 404, description: 'No such resource for this tenant.' },
  GB_ERR_CONFLICT: {
    retryable: false,
    httpStatus: 409,
    description: 'The resource is not in a state that allows this.',
  },
  GB_ERR_PAYLOAD_TOO_LARGE: {
    retryable: false,
    httpStatus: 413,
    description: 'Upload larger than the configured limit.',
  },
  GB_ERR_QUOTA_EXCEEDED: {
    retryable: false,
    httpStatus: 429,
    description:
      "The tenant's quota (queued requests or stored bytes) is used up; retry after Retry-After seconds or free some.",
  },
  GB_ERR_SERVICE_UNAVAILABLE: {
    retryable: true,
    httpStatus: 503,
    description: 'A dependency (Redis, model) is not ready.',
  },
  GB_ERR_FILE_NOT_FOUND: { retryable: false, httpStatus: 400, description: 'The referenced file does not exist.' },
  GB_ERR_EMPTY_INPUT: {
    retryable: false,
    httpStatus: 422,
    description: 'The input has no content (zero bytes or no text).',
  },
  GB_ERR_UNSUPPORTED_MEDIA: {
    retryable: false,
    httpStatus: 415,
    description: 'The content type is not one gembatch processes.',
  },
  GB_ERR_PDF_INVALID: { retryable: false, httpStatus: 422, description: 'The PDF is corrupt or truncated.' },
  GB_ERR_PDF_EMPTY: { retryable: false, httpStatus: 422, description: 'The PDF has no pages.' },
  GB_ERR_PDF_PASSWORD_REQUIRED: {
    retryable: false,
    httpStatus: 422,
    description: 'The PDF needs a password and none was given.',
  },
  GB_ERR_PDF_PASSWORD_INVALID: {
    retryable: false,
    httpStatus: 422,
    description: 'The password given does not open the PDF.',
  },
  GB_ERR_PDF_TOO_LARGE: { retryable: false, httpStatus: 422, description: 'The PDF exceeds the page or byte cap.' },
  GB_ERR_NO_TEXT: {
    retryable: false,
    httpStatus: 422,
    description: 'No text could be extracted and no OCR or vision path is available.',
  },
  GB_ERR_OCR_FAILED: { retryable: true, httpStatus: 500, description: 'OCR of a scanned page failed.' },
  GB_ERR_IMAGE_INVALID: { retryable: false, httpStatus: 422, description: 'The image is corrupt or truncated.' },
  GB_ERR_IMAGE_TOO_LARGE: { retryable: false, httpStatus: 422, description: 'The image exceeds the pixel limit.' },
  GB_ERR_AUDIO_INVALID: { retryable: false, httpStatus: 422, description: 'The audio could not be decoded.' },
  GB_ERR_AUDIO_NO_STREAM: { retryable: false, httpStatus: 422, description: 'The file has no audio stream.' },
  GB_ERR_AUDIO_EMPTY: { retryable: false, httpStatus: 422, description: 'The audio decodes to zero samples.' },
  GB_ERR_AUDIO_TOO_LONG: { retryable: false, httpStatus: 422, description: 'The audio exceeds the duration cap.' },
  GB_ERR_EXTRACT_TIMEOUT: {
    retryable: false,
    httpStatus: 422,
    description: 'Extraction ran past its deadline; the file was stopped, not retried.',
  },
  GB_ERR_EXTRACT_MEMORY: {
    retryable: false,
    httpStatus: 422,
    description: 'Extraction needed more memory than an extraction process may use.',
  },
  GB_ERR_EXTRACT_CRASHED: {
    retryable: false,
    httpStatus: 422,
    description: 'The extraction process crashed on this file.',
  },
  GB_ERR_NO_MEDIA_CAPABLE_NODE: {
    retryable: false,
    httpStatus: 422,
    description: 'No live worker can take image or audio input.',
  },
  GB_ERR_INPUT_TOO_LARGE: {
    retryable: false,
    httpStatus: 422,
    description: 'The input needs more chunk jobs than GEMBATCH_MAX_CHUNKS_PER_JOB allows.',
  },
  GB_ERR_CONTEXT_OVERFLOW: {
    retryable: false,
    httpStatus: 422,
    description: 'The input cannot fit the model context even alone.',
  },
  GB_ERR_SCHEMA_UNSUPPORTED: {
    retryable: false,
    httpStatus: 400,
    description:
      'The JSON Schema uses what gembatch refuses to run (a pattern without a linear-time engine, or too deep).',
  },
  GB_ERR_SCHEMA_VALIDATION: {
    retryable: false,
    httpStatus: 422,
    description: 'The output did not satisfy the JSON Schema after repairs.',
  },
  GB_ERR_OUTPUT_INVALID: {
    retryable: false,
    httpStatus: 500,
    description:
      "A task's output does not match the task's output schema (a task definition's fault, or a chunk result that does not parse).",
  },
  GB_ERR_INFERENCE: { retryable: true, httpStatus: 500, description: 'The engine failed while generating.' },
  GB_ERR_MODEL_LOAD: { retryable: false, httpStatus: 500, description: 'The model could not be loaded.' },
  GB_ERR_MODEL_CHECKSUM: {
    retryable: false,
    httpStatus: 500,
    description: 'A downloaded model file does not have its pinned sha256; it was deleted.',
  },
  GB_ERR_CANCELLED: { retryable: false, httpStatus: 409, description: 'The job was cancelled.' },
  GB_ERR_JOB_STALLED: {
    retryable: false,
    httpStatus: 500,
    description:
      'The node running the job stopped renewing its lock (crashed or frozen) more times than GEMBATCH_MAX_STALLED_COUNT allows; not retried, since the job may be what brings nodes down.',
  },
  GB_ERR_TIMEOUT: { retryable: true, httpStatus: 504, description: 'The job ran past its time limit.' },
  GB_ERR_CONFIG: { retryable: false, httpStatus: 500, description: 'The configuration is invalid.' },
  GB_ERR_INTERNAL: { retryable: true, httpStatus: 500, description: 'An unexpected error.' },
  GB_ERR_WEBHOOK_NOT_ALLOWED: {
    retryable: false,
    httpStatus: 400,
    description: 'The webhook URL is not on the operator allowlist (GEMBATCH_WEBHOOK_ALLOWED_URLS).',
  },
  GB_ERR_WEBHOOK_DELIVERY: {
    retryable: true,
    httpStatus: 502,
    description: 'The webhook receiver did not answer 2xx in time.',
  },
  GB_ERR_FOLDER_NOT_ALLOWED: {
    retryable: false,
    httpStatus: 400,
    description: 'The folder is missing or resolves outside the operator-configured root.',
  },
  GB_ERR_BATCH_EXPIRED: {
    retryable: false,
    httpStatus: 408,
    description: 'The batch reached the end of its completion window before this request ran.',
  },
  GB_ERR_BATCH_INPUT_INVALID: {
    retryable: false,
    httpStatus: 400,
    description: 'A batch input line is not a valid request line (see the batch errors for line numbers).',
  },
} as const satisfies Record<string, { retryable: boolean; httpStatus: number; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The one error class of gembatch: a stable `code`, a readable message, and whether to retry. */
export class GembatchError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Structured, content-free details (sizes, counts, names of fields) safe to log. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GembatchError';
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
    this.details = options.details;
  }

  /** The `{code, message}` pair that jobs and HTTP responses carry. */
  toJSON(): ErrorBody {
    return { code: this.code, message: this.message };
  }
}

/** A `GembatchError` as plain data, for a message between processes (IPC); `details` are content-free by convention. */
export interface SerializedError {
  code: ErrorCode;
  message: string;
  retryable?: boolean;
  details?: Record<string, unknown>;
}

/** Whatever was thrown, as plain data for another process (unknown errors become `GB_ERR_INTERNAL`). */
export function serializeError(error: unknown): SerializedError {
  const gembatch = toGembatchError(error);
  return {
    code: gembatch.code,
    message: gembatch.message,
    retryable: gembatch.retryable,
    ...(gembatch.details ? { details: gembatch.details } : {}),
  };
}

/** The error another process serialized; a code this build does not know becomes `GB_ERR_INTERNAL`. */
export function deserializeError(error: SerializedError): GembatchError {
  if (!isErrorCode(error.code)) return new GembatchError('GB_ERR_INTERNAL', error.message);
  return new GembatchError(error.code, error.message, {
    ...(error.details ? { details: error.details } : {}),
    ...(error.retryable === undefined ? {} : { retryable: error.retryable }),
  });
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** The message of whatever was thrown: an Error's `message`, anything else as a string. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whatever was thrown, as a GembatchError (unknown errors become `GB_ERR_INTERNAL`). */
export function toGembatchError(error: unknown): GembatchError {
  if (error instanceof GembatchError) return error;
  const message = errorMessage(error);
  return new GembatchError('GB_ERR_INTERNAL', message, { cause: error });
}

const FAILED_REASON = /^(GB_ERR_[A-Z_]+): ([\s\S]*)$/;
/** What BullMQ itself writes when a job stalled past `maxStalledCount` (its Lua script, no processor involved). */
export const BULLMQ_STALLED_REASON = 'job stalled more than allowable limit';
/** The readable message of `GB_ERR_JOB_STALLED`. */
export const JOB_STALLED_MESSAGE =
  'the job was taken back from a node that stopped answering (crashed or frozen) more times than allowed (GEMBATCH_MAX_STALLED_COUNT); it is not retried again';

/**
 * BullMQ keeps only a message string for a failed job; the worker adapter writes it as
 * `"<code>: <message>"` and this reads it back. Anything else is reported as `GB_ERR_INTERNAL`.
 */
export function encodeFailedReason(error: GembatchError): string {
  return `${error.code}: ${error.message}`;
}

export function decodeFailedReason(failedReason: string | undefined | null): ErrorBody {
  const match = FAILED_REASON.exec(failedReason ?? '');
  if (match && isErrorCode(match[1])) return { code: match[1], message: match[2] ?? '' };
  // Written by BullMQ where the worker adapter could not translate it (a job failed before it did).
  if (failedReason === BULLMQ_STALLED_REASON) return { code: 'GB_ERR_JOB_STALLED', message: JOB_STALLED_MESSAGE };
  return { code: 'GB_ERR_INTERNAL', message: failedReason || 'unknown error' };
}
