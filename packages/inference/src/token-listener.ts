import type { Logger } from '@gembatch/telemetry';
import type { GenerateRequest } from './engine.ts';

/** A token listener that never throws. */
export type GuardedTokenListener = (generatedTokens: number) => void;

/**
 * Wraps a request's `onToken` so that a listener that throws cannot break decoding (graphile-worker's
 * habit for listeners): the error is swallowed, the first one per generation logged (its name only:
 * a message could quote the document), and the listener keeps being called. Both engines call
 * `onToken` only through this.
 */
export function guardTokenListener(onToken: GenerateRequest['onToken'], log: Logger | undefined): GuardedTokenListener {
  if (!onToken) return () => undefined;
  let reported = false;
  return (generatedTokens) => {
    try {
      onToken(generatedTokens);
    } catch (error) {
      if (reported) return;
      reported = true;
      log?.warn(
        { error: error instanceof Error ? error.name : typeof error },
        'onToken listener threw; generation goes on',
      );
    }
  };
}
