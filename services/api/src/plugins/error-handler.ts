import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, GembatchError, type ErrorCode } from '@gembatch/contracts';

/** Fastify and @fastify/multipart error codes → gembatch codes and the message clients see. */
const FRAMEWORK_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'GB_ERR_PAYLOAD_TOO_LARGE',
    message: 'body: the request body is larger than the limit',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'GB_ERR_UNSUPPORTED_MEDIA',
    message: 'content-type: not accepted here (send application/json, or multipart/form-data to /v1/files)',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'GB_ERR_BAD_REQUEST', message: 'body: empty JSON body' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'GB_ERR_BAD_REQUEST', message: 'body: not valid JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'GB_ERR_BAD_REQUEST',
    message: 'content-length: does not match the body',
  },
  FST_REQ_FILE_TOO_LARGE: { code: 'GB_ERR_PAYLOAD_TOO_LARGE', message: 'file: the upload is larger than the limit' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: {
    code: 'GB_ERR_BAD_REQUEST',
    message: 'file: send the upload as multipart/form-data with a part named file',
  },
  FST_FILES_LIMIT: { code: 'GB_ERR_BAD_REQUEST', message: 'file: send exactly one file' },
  FST_PARTS_LIMIT: { code: 'GB_ERR_BAD_REQUEST', message: 'file: too many parts in the multipart body' },
  FST_FIELDS_LIMIT: { code: 'GB_ERR_BAD_REQUEST', message: 'file: too many fields in the multipart body' },
  FST_PROTO_VIOLATION: { code: 'GB_ERR_BAD_REQUEST', message: 'file: forbidden field name' },
  FST_MP_PREMATURE_CLOSE: {
    code: 'GB_ERR_BAD_REQUEST',
    message: 'file: the upload ended before the multipart body was complete',
  },
  FST_INVALID_JSON_FIELD_ERROR: {
    code: 'GB_ERR_BAD_REQUEST',
    message: 'file: a field declared as JSON is not valid JSON',
  },
};

/** Other 4xx statuses Fastify may raise, by status. */
const STATUS_CODES: Record<number, ErrorCode> = {
  401: 'GB_ERR_UNAUTHORIZED',
  404: 'GB_ERR_NOT_FOUND',
  409: 'GB_ERR_CONFLICT',
  413: 'GB_ERR_PAYLOAD_TOO_LARGE',
  415: 'GB_ERR_UNSUPPORTED_MEDIA',
};

/**
 * ioredis errors that mean Redis cannot serve the request right now (it may be retried): unreachable,
 * or a server that refuses for now: `NOREPLICAS` (a master under `min-replicas-to-write` that lost
 * its replicas, as an old master cut off by a failover), `READONLY` (a demoted master before the
 * client has moved), `LOADING` (a restart reading its data), `MASTERDOWN` (a replica without its master).
 */
const REDIS_UNAVAILABLE =
  /^MaxRetriesPerRequestError:|max retries per request|Connection is closed|ECONNREFUSED|ETIMEDOUT|Stream isn't writeable|^ReplyError: (NOREPLICAS|READONLY|LOADING|MASTERDOWN) /i;

/** What one failed request answers: status and body. */
export interface HttpErrorReply {
  status: number;
  code: ErrorCode;
  message: string;
}

/**
 * Maps anything thrown in a request to the reply: a `GembatchError` with its code's status; a
 * Fastify or multipart error to its gembatch code; Redis being down to 503; the rest to 500.
 * 5xx replies carry a generic message (details go to the log under the request id).
 */
export function toHttpErrorReply(error: unknown, requestId: string): HttpErrorReply {
  let code: ErrorCode = 'GB_ERR_INTERNAL';
  let message = '';
  let status: number | undefined;
  if (error instanceof GembatchError) {
    code = error.code;
    message = error.message;
  } else if (error instanceof Error) {
    const fastifyError = error as FastifyError;
    const known = fastifyError.code ? FRAMEWORK_ERRORS[fastifyError.code] : undefined;
    if (known) ({ code, message } = known);
    else if (REDIS_UNAVAILABLE.test(`${error.name}: ${error.message}`)) code = 'GB_ERR_SERVICE_UNAVAILABLE';
    else if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
      status = fastifyError.statusCode;
      code = STATUS_CODES[status] ?? 'GB_ERR_BAD_REQUEST';
      message = error.message;
    }
  }
  status ??= ERROR_CODES[code].httpStatus;
  if (status === 503)
    return { status, code, message: `a dependency is not available right now; retry later (request ${requestId})` };
  if (status >= 500) return { status, code: 'GB_ERR_INTERNAL', message: `internal error (request ${requestId})` };
  return { status, code, message };
}

/** The API's one error handler, and 404 for unknown routes, both as `{error: {code, message}}`. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const answer = toHttpErrorReply(error, request.id);
    if (answer.status >= 500) request.log.error({ err: error, code: answer.code }, 'request failed');
    else request.log.info({ code: answer.code, status: answer.status }, 'request refused');
    if (answer.status === 429) reply.header('retry-after', String(retryAfterSeconds(error)));
    return reply.code(answer.status).send({ error: { code: answer.code, message: answer.message } });
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    reply.code(404).send({
      error: {
        code: 'GB_ERR_NOT_FOUND',
        message: `no route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`,
      },
    }),
  );
}

/** Why 60 s: a quota frees up as jobs finish or files are deleted, which takes minutes, not milliseconds. */
const DEFAULT_RETRY_AFTER_SECONDS = 60;

/** `Retry-After` of a 429: the error's `details.retryAfterSeconds`, else 60. */
function retryAfterSeconds(error: unknown): number {
  const value = error instanceof GembatchError ? error.details?.retryAfterSeconds : undefined;
  return typeof value === 'number' && Number.isFinite(value) && value > 0
    ? Math.ceil(value)
    : DEFAULT_RETRY_AFTER_SECONDS;
}
