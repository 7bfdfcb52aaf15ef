import type { Metric, Registry } from 'prom-client';
import type { FamilySpec, FamilyType } from './metrics-catalog.ts';
import type { HistogramSample, ScalarSample } from './metrics-samples.ts';

/** Where a family's series come from at scrape time. */
export type FamilySource = () =>
  | ReadonlyArray<ScalarSample | HistogramSample>
  | Promise<ReadonlyArray<ScalarSample | HistogramSample>>;

interface PromValue {
  value: number;
  labels: Record<string, string>;
  metricName?: string;
}

function isHistogramSample(sample: ScalarSample | HistogramSample): sample is HistogramSample {
  return 'buckets' in sample;
}

/**
 * A metric family whose series are read at scrape time from a source (a snapshot of engine
 * counters, a Redis hash), rather than accumulated by `inc`/`observe`. It plugs into a prom-client
 * `Registry` like any built-in metric, so node and fleet output use prom-client's formatter, and
 * it can carry histograms whose bucket counts were summed elsewhere (across nodes, in Redis).
 */
export class MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
  /** How prom-client's cluster registry would merge workers' values. */
  readonly aggregator = 'sum' as const;
  readonly #source: FamilySource;

  constructor(spec: FamilySpec, source: FamilySource) {
    this.name = spec.name;
    this.help = spec.help;
    this.type = spec.type;
    this.#source = source;
  }

  /** Creates a family and registers it in `registry`. */
  static register(registry: Registry, spec: FamilySpec, source: FamilySource): MetricFamily {
    const metric = new MetricFamily(spec, source);
    // prom-client types list only its own classes; the registry needs just name, help, type, get().
    registry.registerMetric(metric as unknown as Metric);
    return metric;
  }

  /** prom-client's scrape hook: the family's series right now. */
  async get(): Promise<{ name: string; help: string; type: FamilyType; aggregator: 'sum'; values: PromValue[] }> {
    const samples = await this.#source();
    const values: PromValue[] = [];
    for (const sample of samples) {
      if (isHistogramSample(sample)) values.push(...this.#histogramValues(sample));
      else values.push({ value: sample.value, labels: { ...sample.labels } });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Series are derived from the source, so there is nothing to reset (prom-client calls this on `resetMetrics`). */
  reset(): void {}

  #histogramValues(sample: HistogramSample): PromValue[] {
    const values: PromValue[] = sample.buckets.map((bucket) => ({
      metricName: `${this.name}_bucket`,
      labels: { ...sample.labels, le: String(bucket.le) },
      value: bucket.count,
    }));
    values.push({ metricName: `${this.name}_bucket`, labels: { ...sample.labels, le: '+Inf' }, value: sample.count });
    values.push({ metricName: `${this.name}_sum`, labels: { ...sample.labels }, value: sample.sum });
    values.push({ metricName: `${this.name}_count`, labels: { ...sample.labels }, value: sample.count });
    return values;
  }
}
