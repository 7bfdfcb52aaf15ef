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
  /**
   * The resolvers of the participants waiting for this step, indexed by sequence id (ids are small:
   * a context's sequences are numbered from 0), so a release walks them in id order without a map,
   * a sort or a copy: this runs for every generated token.
   */
  readonly #waiting: Array<(() => void) | undefined> = [];
  #arrivedCount = 0;
  readonly #clock: StepClock | undefined;
  #releases = 0;
  readonly #releaseSoon = (): void => this.#releaseIfComplete();

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
    if (this.#waiting[sequenceId] !== undefined) throw new Error(`sequence ${sequenceId} arrived twice in one step`);
    this.#participants.add(sequenceId);
    const ready = new Promise<void>((resolve) => {
      this.#waiting[sequenceId] = resolve;
    });
    this.#arrivedCount++;
    // Release on a microtask, after the caller has attached its continuation: resolving here
    // would resume the last arrival after everyone else, out of sequence order.
    queueMicrotask(this.#releaseSoon);
    return ready;
  }

  /** Removes `sequenceId` (its job ended); releases the others if they were only waiting for it. */
  leave(sequenceId: number): void {
    if (!this.#participants.delete(sequenceId)) return;
    const waiting = this.#waiting[sequenceId];
    if (waiting !== undefined) {
      this.#waiting[sequenceId] = undefined;
      this.#arrivedCount--;
      waiting();
    }
    this.#releaseIfComplete();
  }

  #releaseIfComplete(): void {
    if (this.#arrivedCount === 0 || this.#arrivedCount < this.#participants.size) return;
    this.#arrivedCount = 0;
    this.#releases++;
    this.#clock?.released();
    // Resolving runs nothing now (continuations are microtasks), so each slot is cleared as it goes.
    const waiting = this.#waiting;
    for (let id = 0; id < waiting.length; id++) {
      const resolve = waiting[id];
      if (resolve === undefined) continue;
      waiting[id] = undefined;
      resolve();
    }
  }
}
