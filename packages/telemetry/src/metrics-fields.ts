import type { CounterSpec, HistogramSpec } from './metrics-catalog.ts';
import { bucketFor, cumulativeHistogram, type HistogramSample, type ScalarSample } from './metrics-samples.ts';

/**
 * Histogram and counter state kept as flat numeric fields (a Redis hash, or a Map in memory), so
 * that many writers can add to it with HINCRBY and a reader can rebuild exact Prometheus series:
 *
 *   `<key>|<label values joined by ,>|<bucket upper bound>`  observations in that bucket (not cumulative)
 *   `<key>|<label values>|sum`                                 sum of observed values
 *   `<key>|<label values>|count`                               observations (the `+Inf` bucket; a counter's value)
 */

/** What follows the last `|`: a finite bucket bound, `sum` or `count`. */
export type MetricFieldPart = number | 'sum' | 'count';

/** Longest label value kept; anything longer is cut (labels are short names and codes). */
const MAX_LABEL_VALUE_CHARS = 64;

/** Makes a label value safe inside a field name: no `|` or `,` (the separators), no whitespace, bounded length. */
export function fieldLabelValue(value: string): string {
  const cleaned = value.replace(/[|,\s]/g, '_').slice(0, MAX_LABEL_VALUE_CHARS);
  return cleaned === '' ? '_' : cleaned;
}

/** The field name of one part of one series. */
export function encodeMetricField(key: string, labelValues: readonly string[], part: MetricFieldPart): string {
  return `${key}|${labelValues.map(fieldLabelValue).join(',')}|${part}`;
}

/** Field increments for one observation of a histogram: its bucket (when finite), `sum` and `count`. */
export function histogramIncrements(
  spec: HistogramSpec,
  labelValues: readonly string[],
  value: number,
): Array<[field: string, by: number]> {
  const increments: Array<[string, number]> = [
    [encodeMetricField(spec.key, labelValues, 'sum'), value],
    [encodeMetricField(spec.key, labelValues, 'count'), 1],
  ];
  const le = bucketFor(value, spec.buckets);
  if (Number.isFinite(le)) increments.push([encodeMetricField(spec.key, labelValues, le), 1]);
  return increments;
}

/** The field increment for adding `by` to a counter. */
export function counterIncrement(
  spec: CounterSpec,
  labelValues: readonly string[],
  by = 1,
): [field: string, by: number] {
  return [encodeMetricField(spec.key, labelValues, 'count'), by];
}

/** One series rebuilt from fields. */
export interface StoredSeries {
  labelValues: string[];
  /** Bound → observations in that bucket (not cumulative). */
  buckets: Map<number, number>;
  sum: number;
  count: number;
}

/** Family key → joined label values → series. */
export type StoredFamilies = Map<string, Map<string, StoredSeries>>;

/**
 * Groups stored fields by family and series. Fields that do not parse (foreign or damaged) are
 * skipped, never thrown on: a scrape must not fail because of one odd field.
 */
export function decodeMetricFields(fields: Iterable<[string, string | number]>): StoredFamilies {
  const families: StoredFamilies = new Map();
  for (const [field, raw] of fields) {
    const parts = field.split('|');
    if (parts.length !== 3) continue;
    const [key, joined, part] = parts as [string, string, string];
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    let series = families.get(key);
    if (!series) families.set(key, (series = new Map<string, StoredSeries>()));
    let entry = series.get(joined);
    if (!entry)
      series.set(
        joined,
        (entry = { labelValues: joined === '' ? [] : joined.split(','), buckets: new Map(), sum: 0, count: 0 }),
      );
    if (part === 'sum') entry.sum += value;
    else if (part === 'count') entry.count += value;
    else {
      const le = Number(part);
      if (part !== '' && !Number.isNaN(le)) entry.buckets.set(le, (entry.buckets.get(le) ?? 0) + value);
    }
  }
  return families;
}

function labelsOf(
  labelNames: readonly string[],
  labelValues: readonly string[],
  extra: Readonly<Record<string, string>>,
): Record<string, string> | undefined {
  if (labelValues.length !== labelNames.length) return undefined;
  const labels: Record<string, string> = { ...extra };
  labelNames.forEach((name, index) => {
    labels[name] = labelValues[index] as string;
  });
  return labels;
}

/**
 * The Prometheus series of one histogram family from decoded fields. `extraLabels` (e.g. the node)
 * are added to each series; the spec's label names that they cover are not expected in the fields.
 */
export function histogramSamples(
  spec: HistogramSpec,
  families: StoredFamilies,
  extraLabels: Readonly<Record<string, string>> = {},
): HistogramSample[] {
  const names = spec.labelNames.filter((name) => !(name in extraLabels));
  const samples: HistogramSample[] = [];
  for (const series of families.get(spec.key)?.values() ?? []) {
    const labels = labelsOf(names, series.labelValues, extraLabels);
    if (labels) samples.push(cumulativeHistogram(labels, series.buckets, spec.buckets, series.sum, series.count));
  }
  return samples;
}

/** The Prometheus series of one counter family from decoded fields. */
export function counterSamples(spec: CounterSpec, families: StoredFamilies): ScalarSample[] {
  const samples: ScalarSample[] = [];
  for (const series of families.get(spec.key)?.values() ?? []) {
    const labels = labelsOf(spec.labelNames, series.labelValues, {});
    if (labels) samples.push({ labels, value: series.count });
  }
  return samples;
}

/** Adds `increments` into `into` (a field → value map). */
export function addIncrements(into: Map<string, number>, increments: Iterable<[string, number]>): void {
  for (const [field, by] of increments) into.set(field, (into.get(field) ?? 0) + by);
}
