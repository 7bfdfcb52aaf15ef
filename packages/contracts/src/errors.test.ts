import { describe, expect, it } from 'vitest';
import { deserializeError, GembatchError, serializeError, type SerializedError } from './errors.ts';

describe('serializeError / deserializeError', () => {
  it('carries code, message, retryable and details across, through structured clone as IPC does', () => {
    const error = new GembatchError('GB_ERR_EXTRACT_MEMORY', 'too big', { details: { rssBytes: 5 }, retryable: true });
    const back = deserializeError(structuredClone(serializeError(error)));
    expect(back).toBeInstanceOf(GembatchError);
    expect({ code: back.code, message: back.message, retryable: back.retryable, details: back.details }).toStrictEqual({
      code: 'GB_ERR_EXTRACT_MEMORY',
      message: 'too big',
      retryable: true,
      details: { rssBytes: 5 },
    });
  });

  it('turns anything else thrown into GB_ERR_INTERNAL with its message', () => {
    expect(serializeError(new Error('boom'))).toMatchObject({ code: 'GB_ERR_INTERNAL', message: 'boom' });
    expect(serializeError('plain')).toMatchObject({ code: 'GB_ERR_INTERNAL', message: 'plain' });
  });

  it('reads an unknown code, from a newer or older process, as GB_ERR_INTERNAL', () => {
    const back = deserializeError({ code: 'GB_ERR_FROM_THE_FUTURE', message: 'x' } as unknown as SerializedError);
    expect(back.code).toBe('GB_ERR_INTERNAL');
    expect(back.message).toBe('x');
  });

  it('keeps the code’s default retryable when none is sent', () => {
    expect(deserializeError({ code: 'GB_ERR_INFERENCE', message: 'x' }).retryable).toBe(
      new GembatchError('GB_ERR_INFERENCE', 'x').retryable,
    );
  });
});
