import type { StepClock } from './step-clock.ts';

/**
 * Lock-step scheduling for batched decoding: every active sequence waits here after it receives a
 * token, and all of them are released together once the last one has arrived, so their next
 * tokens reach llama.cpp in the same decode. Releases go in ascending sequence id order, which is
 * the order llama.cpp needs to keep a decode in one forward pass.
 *
 * A sequence joins by arriving (it then waits for the step in flight to finish) and leaves when its
 * job ends, which may release the others.
 */
export class LockstepBarrier {
  readonly #participants = new Set<number>();
  readonly #arrived = new Map<number, () => void>();
  readonly #clock: StepClock | undefined;
  #releases = 0;

  /** @param clock Told of each release (a step's end). */
  constructor(clock?: StepClock) {
    this.#clock = clock;
  }

  /** Sequences taking part. */
  get size(): number {
    return this.#participants.size;
  }

  /** Steps released so far. */
  get releases(): number {
    return this.#releases;
  }

  /**
   * Marks `sequenceId` as ready for the next step (joining if new) and resolves when every
   * participant is ready.
   */
  arrive(sequenceId: number): Promise<void> {
    if (this.#arrived.has(sequenceId)) throw new Error(`sequence ${sequenceId} arrived twice in one step`);
    this.#participants.add(sequenceId);
    const ready = new Promise<void>((resolve) => this.#arrived.set(sequenceId, resolve));
    // Release on a microtask, after the caller has attached its continuation: resolving here
    // would resume the last arrival after everyone else, out of sequence order.
    queueMicrotask(() => this.#releaseIfComplete());
    return ready;
  }

  /** Removes `sequenceId` (its job ended); releases the others if they were only waiting for it. */
  leave(sequenceId: number): void {
    if (!this.#participants.delete(sequenceId)) return;
    const waiting = this.#arrived.get(sequenceId);
    this.#arrived.delete(sequenceId);
    waiting?.();
    this.#releaseIfComplete();
  }

  #releaseIfComplete(): void {
    if (this.#arrived.size === 0 || this.#arrived.size < this.#participants.size) return;
    const order = [...this.#arrived.keys()].sort((a, b) => a - b);
    const resolvers = order.map((id) => this.#arrived.get(id) as () => void);
    this.#arrived.clear();
    this.#releases++;
    this.#clock?.released();
    for (const resolve of resolvers) resolve();
  }
}
