import { GembatchError } from '@gembatch/contracts';

/** Throws `GB_ERR_CANCELLED` when the signal has fired; call between steps of long work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError();
}

/** The error every cancelled extraction ends with. */
export function cancelledError(): GembatchError {
  return new GembatchError('GB_ERR_CANCELLED', 'extraction was cancelled');
}
