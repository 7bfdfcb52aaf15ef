/** Over how long a node's tok/s gauges are averaged: long enough to smooth job boundaries, short enough to show a stall within a minute. */
export const DEFAULT_RATE_WINDOW_MS = 60_000;

interface CounterSample {
  at: number;
  values: readonly number[];
}

/**
 * Per-second rates of monotonic counters over a sliding window, from periodic samples: the rate
 * at time t is (value now − value at the window's start) ÷ elapsed, like PromQL `rate()` over
 * the window. Before a full window has passed, it averages over the time since the first sample.
 */
export class RateWindow {
  readonly #samples: CounterSample[] = [];

  readonly #windowMs: number;

  /** @param windowMs Length of the window. Defaults to `DEFAULT_RATE_WINDOW_MS` (60 s). */
  constructor(windowMs: number = DEFAULT_RATE_WINDOW_MS) {
    this.#windowMs = windowMs;
  }

  /** Records the counters' values at `at` (ms). Samples must come in time order. */
  add(at: number, values: readonly number[]): void {
    this.#samples.push({ at, values: [...values] });
    // Keep one sample at or before the window start as the baseline; drop older ones.
    while (this.#samples.length > 2 && (this.#samples[1] as CounterSample).at <= at - this.#windowMs)
      this.#samples.shift();
  }

  /**
   * Rates per second of each counter at `at`, given their current `values` (which need not have
   * been added). Zero without an earlier sample, and for a counter that went backwards (a reset).
   */
  rates(at: number, values: readonly number[]): number[] {
    const base = this.#baseline(at);
    const elapsedS = base ? (at - base.at) / 1000 : 0;
    return values.map((value, index) => {
      if (!base || elapsedS <= 0) return 0;
      const delta = value - (base.values[index] ?? 0);
      return delta > 0 ? delta / elapsedS : 0;
    });
  }

  /** The newest sample at or before the window start, else the oldest sample before `at`. */
  #baseline(at: number): CounterSample | undefined {
    let base: CounterSample | undefined;
    for (const sample of this.#samples) {
      if (sample.at >= at) break;
      if (base === undefined || sample.at <= at - this.#windowMs) base = sample;
    }
    return base;
  }
}
