import { describe, expect, it } from 'vitest';
import { JOB_COUNTERS, JOB_HISTOGRAMS } from './metrics-catalog.ts';
import {
  addIncrements,
  counterIncrement,
  counterSamples,
  decodeMetricFields,
  encodeMetricField,
  fieldLabelValue,
  histogramIncrements,
  histogramSamples,
} from './metrics-fields.ts';

describe('metric fields', () => {
  it('encodes a series part as key|labels|part and keeps separators out of label values', () => {
    expect(encodeMetricField('ttft', ['summarize'], 0.5)).toBe('ttft|summarize|0.5');
    expect(encodeMetricField('duration', ['prompt', 'failed'], 'count')).toBe('duration|prompt,failed|count');
    expect(fieldLabelValue('a|b,c d')).toBe('a_b_c_d');
    expect(fieldLabelValue('')).toBe('_');
    expect(fieldLabelValue('x'.repeat(100))).toHaveLength(64);
  });

  it('puts an observation in the smallest bucket at or above it, plus sum and count', () => {
    const fields = new Map<string, number>();
    addIncrements(fields, histogramIncrements(JOB_HISTOGRAMS.timeToFirstToken, ['summarize'], 0.3));
    addIncrements(fields, histogramIncrements(JOB_HISTOGRAMS.timeToFirstToken, ['summarize'], 0.5));
    addIncrements(fields, histogramIncrements(JOB_HISTOGRAMS.timeToFirstToken, ['summarize'], 10_000));
    expect(fields.get('ttft|summarize|0.5')).toBe(2);
    expect(fields.get('ttft|summarize|count')).toBe(3);
    expect(fields.get('ttft|summarize|sum')).toBeCloseTo(10_000.8);
    // Above every bound: only sum and count (the +Inf bucket).
    expect(
      [...fields.keys()].filter((f) => f.startsWith('ttft|summarize|') && !f.endsWith('sum') && !f.endsWith('count')),
    ).toEqual(['ttft|summarize|0.5']);
  });

  it('rebuilds cumulative Prometheus histograms, summing fields written by several nodes', () => {
    const nodeA = new Map<string, number>();
    const nodeB = new Map<string, number>();
    addIncrements(nodeA, histogramIncrements(JOB_HISTOGRAMS.jobDuration, ['classify', 'completed'], 0.2));
    addIncrements(nodeB, histogramIncrements(JOB_HISTOGRAMS.jobDuration, ['classify', 'completed'], 3));
    addIncrements(nodeB, histogramIncrements(JOB_HISTOGRAMS.jobDuration, ['classify', 'failed'], 3));
    const merged = new Map(nodeA);
    addIncrements(merged, nodeB);
    const stored = [...merged].map(([field, value]) => [field, String(value)] as [string, string]);
    const samples = histogramSamples(JOB_HISTOGRAMS.jobDuration, decodeMetricFields(stored));
    const completed = samples.find((s) => s.labels.outcome === 'completed');
    expect(completed?.labels).toEqual({ task: 'classify', outcome: 'completed' });
    expect(completed?.count).toBe(2);
    expect(completed?.sum).toBeCloseTo(3.2);
    expect(completed?.buckets.find((b) => b.le === 0.25)?.count).toBe(1);
    expect(completed?.buckets.find((b) => b.le === 2.5)?.count).toBe(1);
    expect(completed?.buckets.find((b) => b.le === 5)?.count).toBe(2);
    expect(completed?.buckets.map((b) => b.le)).toEqual(JOB_HISTOGRAMS.jobDuration.buckets);
    expect(samples.find((s) => s.labels.outcome === 'failed')?.count).toBe(1);
  });

  it('reads counters and skips fields that do not parse', () => {
    const fields = new Map<string, number>();
    addIncrements(fields, [
      counterIncrement(JOB_COUNTERS.errors, ['GB_ERR_PDF_INVALID']),
      counterIncrement(JOB_COUNTERS.errors, ['GB_ERR_PDF_INVALID'], 2),
    ]);
    const stored: Array<[string, string]> = [
      ...[...fields].map(([f, v]) => [f, String(v)] as [string, string]),
      ['junk', '1'],
      ['errors|GB_ERR_X|count', 'not-a-number'],
      ['jobs|only-one-label|count', '4'],
    ];
    const families = decodeMetricFields(stored);
    expect(counterSamples(JOB_COUNTERS.errors, families)).toEqual([
      { labels: { code: 'GB_ERR_PDF_INVALID' }, value: 3 },
    ]);
    // jobs_total needs two label values: a malformed series is dropped, not mislabelled.
    expect(counterSamples(JOB_COUNTERS.jobs, families)).toEqual([]);
  });

  it('keeps bucket bounds found in storage that the catalog no longer lists', () => {
    const families = decodeMetricFields([
      ['itl|prompt|0.003', '2'],
      ['itl|prompt|count', '2'],
      ['itl|prompt|sum', '0.006'],
    ]);
    const [sample] = histogramSamples(JOB_HISTOGRAMS.interTokenLatency, families);
    expect(sample?.buckets.find((b) => b.le === 0.003)?.count).toBe(2);
    expect(sample?.buckets.find((b) => b.le === 0.0025)?.count).toBe(0);
    expect(sample?.buckets.find((b) => b.le === 0.005)?.count).toBe(2);
  });
});
