import { GembatchError } from '@gembatch/contracts';

interface Waiter<T> {
  resolve: (item: T) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * The context's sequences, handed to one job at a time. The lowest free sequence id goes first
 * unless the caller's affinity prefers another (active sequences then mostly stay contiguous, which
 * llama.cpp decodes in fewer ubatches); jobs that find none free wait in arrival order.
 */
export class SequencePool<T extends { sequenceId: number }> {
  readonly #free: T[];
  readonly #waiters: Waiter<T>[] = [];
  readonly #size: number;

  constructor(items: readonly T[]) {
    this.#free = [...items].sort((a, b) => a.sequenceId - b.sequenceId);
    this.#size = items.length;
  }

  /** Sequences currently held by jobs. */
  get inUse(): number {
    return this.#size - this.#free.length;
  }

  /** Jobs waiting for a sequence. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves to a free sequence; rejects with `GB_ERR_CANCELLED` if `signal` aborts first. With
   * `affinity`, the free sequence it scores highest (ties: the lowest id), e.g. the one already
   * holding the longest prefix of the job's prompt; a job that waits takes the next one released.
   */
  acquire(signal?: AbortSignal, affinity?: (item: T) => number): Promise<T> {
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    let best = 0;
    if (affinity && this.#free.length > 1) {
      let bestScore = Number.NEGATIVE_INFINITY;
      this.#free.forEach((candidate, index) => {
        const score = affinity(candidate);
        if (score > bestScore) {
          bestScore = score;
          best = index;
        }
      });
    }
    const [item] = this.#free.splice(best, 1);
    if (item) return Promise.resolve(item);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(cancelled(signal));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Returns a sequence: to the first waiting job, or to the free list. */
  release(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(item);
      return;
    }
    this.#free.push(item);
    this.#free.sort((a, b) => a.sequenceId - b.sequenceId);
  }

  /** Rejects every waiting job (the engine is closing). */
  rejectWaiting(error: unknown): void {
    for (const waiter of this.#waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(error);
    }
  }
}

function cancelled(signal: AbortSignal | undefined): GembatchError {
  return new GembatchError('GB_ERR_CANCELLED', 'generation was cancelled', { cause: signal?.reason });
}
