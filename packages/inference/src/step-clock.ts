import type { StepTimes } from '@gembatch/contracts';

type Phase = 'idle' | 'decoding' | 'sampling' | 'released';

/**
 * Splits the engine's time while it generates into {@link StepTimes}, from four events: a decode is
 * dispatched (the batching strategy plans its batch), the decode is done (node-llama-cpp, patched,
 * says so before sampling its tokens), the lock-step barrier releases the step (every sequence has
 * its token), and generation stops (no job generating: nothing counts until the next dispatch).
 * Decode → done is `decode`; done → release is `sampling`, or done → next dispatch when no step is
 * released (one-token jobs end at their first token); release → next dispatch is `scheduling`.
 * On a GPU too the decode's end is the compute's end: llama.cpp's `llama_decode` returns before an
 * asynchronous backend finishes, but node-llama-cpp's decode task calls `llama_synchronize` after
 * it (`AddonContext.cpp`), so the wait is not counted as sampling.
 */
export class StepClock {
  readonly #times: StepTimes = { decode: 0, sampling: 0, scheduling: 0 };
  #phase: Phase = 'idle';
  #since = 0;

  /** Totals since the engine started. */
  get times(): StepTimes {
    return { ...this.#times };
  }

  dispatched(now = performance.now()): void {
    this.#close(now);
    this.#enter('decoding', now);
  }

  decoded(now = performance.now()): void {
    if (this.#phase !== 'decoding') return;
    this.#close(now);
    this.#enter('sampling', now);
  }

  released(now = performance.now()): void {
    if (this.#phase !== 'sampling') return;
    this.#close(now);
    this.#enter('released', now);
  }

  idle(now = performance.now()): void {
    this.#close(now);
    this.#enter('idle', now);
  }

  /** Adds the time since the current phase began to that phase's total. */
  #close(now: number): void {
    const elapsed = Math.max(0, now - this.#since);
    if (this.#phase === 'decoding') this.#times.decode += elapsed;
    else if (this.#phase === 'sampling') this.#times.sampling += elapsed;
    else if (this.#phase === 'released') this.#times.scheduling += elapsed;
  }

  #enter(phase: Phase, now: number): void {
    this.#phase = phase;
    this.#since = now;
  }
}
