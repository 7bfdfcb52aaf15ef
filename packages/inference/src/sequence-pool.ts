import { GembatchError } from '@gembatch/contracts';

interface Waiter<T> {
  resolve: (item: T) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * The context's sequences, handed to one job at a time. The lowest free sequence id goes first, so
 * active sequences stay contiguous (llama.cpp decodes a contiguous run of ids in one pass); jobs
 * that find none free wait in arrival order.
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

  /** Resolves to a free sequence; rejects with `GB_ERR_CANCELLED` if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    const item = this.#free.shift();
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
