import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { GembatchError, errorMessage } from '@gembatch/contracts';

/** One counter, gauge or untyped sample. */
export interface PrometheusSample {
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the exposition gave one. */
  timestampMs?: number;
}

/** One histogram series (one label set): cumulative buckets sorted by `le`, then sum and count. */
export interface PrometheusHistogram {
  labels: Record<string, string>;
  buckets: Array<{ le: number; count: number }>;
  sum: number;
  count: number;
}

/** One summary series: quantiles sorted by `quantile`, then sum and count. */
export interface PrometheusSummary {
  labels: Record<string, string>;
  quantiles: Array<{ quantile: number; value: number }>;
  sum: number;
  count: number;
}

interface FamilyBase {
  name: string;
  help: string;
}

/** A metric family (`# TYPE` block) with its samples, typed by kind. */
export type PrometheusFamily =
  | (FamilyBase & { type: 'counter' | 'gauge' | 'untyped'; metrics: PrometheusSample[] })
  | (FamilyBase & { type: 'histogram'; metrics: PrometheusHistogram[] })
  | (FamilyBase & { type: 'summary'; metrics: PrometheusSummary[] });

type Kind = PrometheusFamily['type'];
const KINDS: readonly Kind[] = ['counter', 'gauge', 'untyped', 'histogram', 'summary'];

/**
 * Parses the Prometheus text exposition format (what `/metrics` serves) into families with
 * numeric values (`+Inf`, `-Inf`, `NaN` included). Lines are parsed by parse-prometheus-text-format;
 * histograms and summaries are regrouped here per label set, because that library merges all
 * label sets of a histogram into one and drops their sums and counts. Malformed text throws
 * `GB_ERR_BAD_REQUEST`.
 */
export function parsePrometheusFamilies(text: string): PrometheusFamily[] {
  const declared = new Map<string, Kind>();
  const lines = text.split('\n').map((line) => {
    const match = /^#\s+TYPE\s+(\S+)\s+(\S+)\s*$/.exec(line.trim());
    if (!match) return line;
    const [, name = '', type = ''] = match;
    const kind = type.toLowerCase() as Kind;
    if (!KINDS.includes(kind))
      throw new GembatchError('GB_ERR_BAD_REQUEST', `unknown metric type "${type}" for ${name}`);
    declared.set(name, kind);
    // Histograms and summaries go through as untyped, so each `_bucket`/`_sum`/`_count` line keeps its labels.
    return kind === 'histogram' || kind === 'summary' ? `# TYPE ${name} untyped` : line;
  });
  let raw: ReturnType<typeof parsePrometheusTextFormat>;
  try {
    // The library drops the last sample when the text does not end with a newline.
    raw = parsePrometheusTextFormat(`${lines.join('\n')}\n`);
  } catch (error) {
    throw new GembatchError('GB_ERR_BAD_REQUEST', `not Prometheus text format: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  // A histogram's `_bucket`/`_sum`/`_count` series alternate per label set, so the same name can
  // come back as several runs: merge them, keeping the order of first appearance.
  const bySeriesName = new Map<string, (typeof raw)[number]>();
  for (const family of raw) {
    const seen = bySeriesName.get(family.name);
    if (seen) seen.metrics.push(...family.metrics);
    else bySeriesName.set(family.name, { ...family, metrics: [...family.metrics] });
  }
  const consumed = new Set<string>();
  const families: PrometheusFamily[] = [];
  for (const family of bySeriesName.values()) {
    if (consumed.has(family.name)) continue;
    const kind = declared.get(family.name) ?? 'untyped';
    if (kind === 'histogram' || kind === 'summary') {
      const parts = ['_bucket', '_sum', '_count', ''].map((suffix) => `${family.name}${suffix}`);
      for (const part of parts) consumed.add(part);
      const samples = parts.flatMap((part) =>
        (bySeriesName.get(part)?.metrics ?? []).map((metric) => ({ series: part, metric })),
      );
      families.push(
        kind === 'histogram'
          ? { name: family.name, help: family.help, type: 'histogram', metrics: histograms(family.name, samples) }
          : { name: family.name, help: family.help, type: 'summary', metrics: summaries(family.name, samples) },
      );
      continue;
    }
    families.push({ name: family.name, help: family.help, type: kind, metrics: family.metrics.map(toSample) });
  }
  return families;
}

type RawSample = ReturnType<typeof parsePrometheusTextFormat>[number]['metrics'][number];

function toSample(metric: RawSample): PrometheusSample {
  const sample: PrometheusSample = { labels: { ...metric.labels }, value: parseValue(metric.value) };
  if (metric.timestamp_ms !== undefined) sample.timestampMs = Number(metric.timestamp_ms);
  return sample;
}

/** Series are grouped by their labels without `le`/`quantile`; key order does not matter. */
function seriesKey(labels: Record<string, string>, without: string): string {
  return JSON.stringify(
    Object.entries(labels)
      .filter(([name]) => name !== without)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

function withoutLabel(labels: Record<string, string>, name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([key]) => key !== name));
}

type SeriesSample = { series: string; metric: RawSample };

/**
 * Groups a histogram's or summary's samples into one group per label set (ignoring `splitLabel`):
 * `_sum` and `_count` fill the group's sum and count, every other sample goes to `addPoint`.
 */
function groupSeries<G extends { labels: Record<string, string>; sum: number; count: number }>(
  name: string,
  samples: readonly SeriesSample[],
  splitLabel: string,
  create: (labels: Record<string, string>) => G,
  addPoint: (group: G, series: string, labels: Record<string, string>, value: number) => void,
): G[] {
  const groups = new Map<string, G>();
  for (const { series, metric } of samples) {
    const labels = metric.labels ?? {};
    const key = seriesKey(labels, splitLabel);
    let group = groups.get(key);
    if (!group) {
      group = create(withoutLabel(labels, splitLabel));
      groups.set(key, group);
    }
    const value = parseValue(metric.value);
    if (series === `${name}_sum`) group.sum = value;
    else if (series === `${name}_count`) group.count = value;
    else addPoint(group, series, labels, value);
  }
  return [...groups.values()];
}

function histograms(name: string, samples: readonly SeriesSample[]): PrometheusHistogram[] {
  const groups = groupSeries(
    name,
    samples,
    'le',
    (labels): PrometheusHistogram => ({ labels, buckets: [], sum: Number.NaN, count: Number.NaN }),
    (group, series, labels, value) => {
      if (series !== `${name}_bucket`) return;
      if (labels.le === undefined)
        throw new GembatchError('GB_ERR_BAD_REQUEST', `${name}_bucket sample without an le label`);
      group.buckets.push({ le: parseValue(labels.le), count: value });
    },
  );
  for (const group of groups) group.buckets.sort((a, b) => a.le - b.le);
  return groups;
}

function summaries(name: string, samples: readonly SeriesSample[]): PrometheusSummary[] {
  const groups = groupSeries(
    name,
    samples,
    'quantile',
    (labels): PrometheusSummary => ({ labels, quantiles: [], sum: Number.NaN, count: Number.NaN }),
    (group, series, labels, value) => {
      if (series === name && labels.quantile !== undefined)
        group.quantiles.push({ quantile: parseValue(labels.quantile), value });
    },
  );
  for (const group of groups) group.quantiles.sort((a, b) => a.quantile - b.quantile);
  return groups;
}

/** A sample value as Prometheus writes it: a float, `+Inf`, `-Inf` or `NaN`. */
function parseValue(value: string | undefined): number {
  if (value === undefined) return Number.NaN;
  const trimmed = value.trim();
  if (trimmed === '+Inf' || trimmed === 'Inf') return Number.POSITIVE_INFINITY;
  if (trimmed === '-Inf') return Number.NEGATIVE_INFINITY;
  if (trimmed === 'NaN') return Number.NaN;
  const number = Number(trimmed);
  if (trimmed === '' || Number.isNaN(number))
    throw new GembatchError('GB_ERR_BAD_REQUEST', `not a sample value: "${value}"`);
  return number;
}

/** The family called `name`, or `undefined`. */
export function findFamily(families: readonly PrometheusFamily[], name: string): PrometheusFamily | undefined {
  return families.find((family) => family.name === name);
}

/**
 * The value of the counter/gauge/untyped sample of `name` whose labels include all of `labels`
 * (exactly one must match, else `undefined`; use it in tests as `expect(metricValue(...)).toBe(3)`).
 */
export function metricValue(
  families: readonly PrometheusFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = findFamily(families, name);
  if (!family || family.type === 'histogram' || family.type === 'summary') return undefined;
  const matches = family.metrics.filter((sample) =>
    Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  return matches.length === 1 ? matches[0]?.value : undefined;
}
