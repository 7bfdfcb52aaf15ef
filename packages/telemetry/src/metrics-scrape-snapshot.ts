/**
 * Shares one read among the families of a scrape: prom-client asks every family for its series at
 * once, and they all should see the same snapshot (one Redis round trip, consistent numbers).
 * A read in flight is shared; the next scrape starts a new one.
 */
export class ScrapeSnapshot<T> {
  #inFlight: Promise<T> | undefined;

  readonly #read: () => Promise<T>;

  /** @param read Loads a fresh snapshot. */
  constructor(read: () => Promise<T>) {
    this.#read = read;
  }

  /** The snapshot being read now, or a new read. */
  get(): Promise<T> {
    if (this.#inFlight) return this.#inFlight;
    const pending = this.#read();
    this.#inFlight = pending;
    const clear = (): void => {
      if (this.#inFlight === pending) this.#inFlight = undefined;
    };
    pending.then(clear, clear);
    return pending;
  }
}
