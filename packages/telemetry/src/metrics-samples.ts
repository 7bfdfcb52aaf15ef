/** Label name → value of one series. */
export type Labels = Readonly<Record<string, string>>;

/** One gauge or counter series. */
export interface ScalarSample {
  labels: Labels;
  value: number;
}

/** One histogram series, in Prometheus form: cumulative counts per finite upper bound. */
export interface HistogramSample {
  labels: Labels;
  /** Finite upper bounds ascending, each with the count of observations ≤ it. `+Inf` is `count`. */
  buckets: ReadonlyArray<{ le: number; count: number }>;
  sum: number;
  count: number;
}

/**
 * Turns per-bucket counts (bound → observations that fell in that bucket, not cumulative) into a
 * cumulative Prometheus histogram over the union of `bounds` and the bounds present. Observations
 * above every bound only show in `count`. `count` is raised to the bucket total if it is lower,
 * so `+Inf` never falls below a finite bucket.
 */
export function cumulativeHistogram(
  labels: Labels,
  bucketCounts: ReadonlyMap<number, number>,
  bounds: readonly number[],
  sum: number,
  count: number,
): HistogramSample {
  const all = [...new Set([...bounds, ...[...bucketCounts.keys()].filter((le) => Number.isFinite(le))])].sort(
    (a, b) => a - b,
  );
  let running = 0;
  const buckets = all.map((le) => {
    running += bucketCounts.get(le) ?? 0;
    return { le, count: running };
  });
  return { labels, buckets, sum, count: Math.max(count, running + (bucketCounts.get(Number.POSITIVE_INFINITY) ?? 0)) };
}

/** The smallest bound ≥ `value`, or `+Inf` when the value is above every bound. */
export function bucketFor(value: number, bounds: readonly number[]): number {
  for (const le of bounds) if (value <= le) return le;
  return Number.POSITIVE_INFINITY;
}
