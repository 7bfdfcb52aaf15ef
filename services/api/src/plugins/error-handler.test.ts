import { describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { toHttpErrorReply } from './error-handler.ts';

function frameworkError(code: string, statusCode: number, message = 'framework says no'): Error {
  return Object.assign(new Error(message), { code, statusCode });
}

describe('toHttpErrorReply', () => {
  it('answers a GembatchError with its code, status and message', () => {
    expect(toHttpErrorReply(new GembatchError('GB_ERR_FILE_NOT_FOUND', 'file_id: no file x'), 'r1')).toEqual({
      status: 400,
      code: 'GB_ERR_FILE_NOT_FOUND',
      message: 'file_id: no file x',
    });
    expect(toHttpErrorReply(new GembatchError('GB_ERR_CONFLICT', 'job is queued'), 'r1')).toEqual({
      status: 409,
      code: 'GB_ERR_CONFLICT',
      message: 'job is queued',
    });
  });

  it('hides the details of 5xx behind the request id', () => {
    expect(toHttpErrorReply(new Error('ENOSPC at /var/secret'), 'r2')).toEqual({
      status: 500,
      code: 'GB_ERR_INTERNAL',
      message: 'internal error (request r2)',
    });
    expect(toHttpErrorReply(new GembatchError('GB_ERR_MODEL_LOAD', 'weights at /models/x missing'), 'r3')).toEqual({
      status: 500,
      code: 'GB_ERR_INTERNAL',
      message: 'internal error (request r3)',
    });
    expect(toHttpErrorReply('a string was thrown', 'r4').code).toBe('GB_ERR_INTERNAL');
  });

  it('maps Redis outages to 503', () => {
    expect(toHttpErrorReply(new Error('Connection is closed.'), 'r5')).toMatchObject({
      status: 503,
      code: 'GB_ERR_SERVICE_UNAVAILABLE',
    });
    // ioredis' MaxRetriesPerRequestError, as thrown while Redis is unreachable.
    const maxRetries = Object.assign(
      new Error(
        'Reached the max retries per request limit (which is 2). Refer to "maxRetriesPerRequest" option for details.',
      ),
      { name: 'MaxRetriesPerRequestError' },
    );
    expect(toHttpErrorReply(maxRetries, 'r6')).toEqual({
      status: 503,
      code: 'GB_ERR_SERVICE_UNAVAILABLE',
      message: 'a dependency is not available right now; retry later (request r6)',
    });
  });

  it('maps a Redis server refusing for now (NOREPLICAS, READONLY, LOADING, MASTERDOWN) to 503, other replies to 500', () => {
    const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
    for (const message of [
      'NOREPLICAS Not enough good replicas to write.',
      "READONLY You can't write against a read only replica.",
      'LOADING Redis is loading the dataset in memory',
      'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.',
    ])
      expect(toHttpErrorReply(reply(message), 'r').status).toBe(503);
    expect(
      toHttpErrorReply(reply('WRONGTYPE Operation against a key holding the wrong kind of value'), 'r').status,
    ).toBe(500);
  });

  it('maps Fastify and multipart errors to gembatch codes', () => {
    expect(toHttpErrorReply(frameworkError('FST_ERR_CTP_BODY_TOO_LARGE', 413), 'r')).toMatchObject({
      status: 413,
      code: 'GB_ERR_PAYLOAD_TOO_LARGE',
    });
    expect(toHttpErrorReply(frameworkError('FST_REQ_FILE_TOO_LARGE', 413), 'r')).toMatchObject({
      status: 413,
      code: 'GB_ERR_PAYLOAD_TOO_LARGE',
      message: expect.stringMatching(/^file: /),
    });
    expect(toHttpErrorReply(frameworkError('FST_INVALID_MULTIPART_CONTENT_TYPE', 406), 'r')).toMatchObject({
      status: 400,
      code: 'GB_ERR_BAD_REQUEST',
      message: expect.stringMatching(/^file: /),
    });
    expect(toHttpErrorReply(frameworkError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), 'r')).toMatchObject({
      status: 415,
      code: 'GB_ERR_UNSUPPORTED_MEDIA',
    });
    expect(toHttpErrorReply(frameworkError('FST_ERR_SOMETHING_NEW', 405, 'method not allowed'), 'r')).toEqual({
      status: 405,
      code: 'GB_ERR_BAD_REQUEST',
      message: 'method not allowed',
    });
  });
});
