/**
 * What both engines' `close()` share: the option vocabulary (`closeTimeoutMs`), its default and
 * the drain helper.
 */

/** Default `closeTimeoutMs`. Why 30 s: room for a long answer to finish, ~1000 tokens at a slow 30 tok/s. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

/** After `closeTimeoutMs`, how long aborted generations get to unwind before the model is freed anyway. Why 5 s: an abort takes effect at the next token. */
export const CLOSE_ABORT_GRACE_MS = 5_000;

/**
 * Resolves `true` once every promise has settled (fulfilled or rejected) within `timeoutMs`,
 * `false` when the time runs out first. Never rejects; the timer is cleared either way.
 */
export async function settleWithin(promises: readonly Promise<unknown>[], timeoutMs: number): Promise<boolean> {
  if (promises.length === 0) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([Promise.allSettled(promises).then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
