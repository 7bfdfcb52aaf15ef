import { GembatchError, type ErrorCode } from '@gembatch/contracts';
import { expect } from 'vitest';

/** Awaits `work` and asserts it rejects with a `GembatchError` of exactly `code`; returns the error. */
export async function expectErrorCode(work: Promise<unknown>, code: ErrorCode): Promise<GembatchError> {
  const error: unknown = await work.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error, `expected ${code}`).toBeInstanceOf(GembatchError);
  expect((error as GembatchError).code).toBe(code);
  return error as GembatchError;
}
