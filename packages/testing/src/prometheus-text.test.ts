import { describe, expect, test } from 'vitest';
import { findFamily, metricValue, parsePrometheusFamilies } from './prometheus-text.ts';

const EXPOSITION = `# HELP gembatch_generated_tokens_total Tokens generated.
# TYPE gembatch_generated_tokens_total counter
gembatch_generated_tokens_total{node="a",model="m"} 1027 1395066363000
gembatch_generated_tokens_total{node="b",model="m"} 3
# HELP gembatch_tokens_per_second Decode speed.
# TYPE gembatch_tokens_per_second gauge
gembatch_tokens_per_second{node="a"} 12.5
gembatch_tokens_per_second{node="b"} NaN
# HELP gembatch_job_duration_seconds Job latency.
# TYPE gembatch_job_duration_seconds histogram
gembatch_job_duration_seconds_bucket{le="0.5",task="summarize"} 1
gembatch_job_duration_seconds_bucket{le="+Inf",task="summarize"} 3
gembatch_job_duration_seconds_bucket{le="0.1",task="summarize"} 0
gembatch_job_duration_seconds_sum{task="summarize"} 7.5
gembatch_job_duration_seconds_count{task="summarize"} 3
gembatch_job_duration_seconds_bucket{le="0.1",task="redact"} 2
gembatch_job_duration_seconds_bucket{le="0.5",task="redact"} 2
gembatch_job_duration_seconds_bucket{le="+Inf",task="redact"} 2
gembatch_job_duration_seconds_sum{task="redact"} 0.1
gembatch_job_duration_seconds_count{task="redact"} 2
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.9"} 9
rpc_seconds{quantile="0.5"} 4
rpc_seconds_sum 17
rpc_seconds_count 3
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9
last_line_without_newline -Inf`;

describe('parsePrometheusFamilies', () => {
  const families = parsePrometheusFamilies(EXPOSITION);

  test('reads counters and gauges with labels, values, timestamps and help', () => {
    expect(findFamily(families, 'gembatch_generated_tokens_total')).toEqual({
      name: 'gembatch_generated_tokens_total',
      help: 'Tokens generated.',
      type: 'counter',
      metrics: [
        { labels: { node: 'a', model: 'm' }, value: 1027, timestampMs: 1395066363000 },
        { labels: { node: 'b', model: 'm' }, value: 3 },
      ],
    });
    expect(metricValue(families, 'gembatch_tokens_per_second', { node: 'a' })).toBe(12.5);
    expect(metricValue(families, 'gembatch_tokens_per_second', { node: 'b' })).toBeNaN();
    expect(metricValue(families, 'gembatch_tokens_per_second')).toBeUndefined();
  });

  test('keeps each histogram label set apart, with sorted buckets, sum and count', () => {
    const histogram = findFamily(families, 'gembatch_job_duration_seconds');
    expect(histogram?.type).toBe('histogram');
    expect(histogram?.metrics).toEqual([
      {
        labels: { task: 'summarize' },
        buckets: [
          { le: 0.1, count: 0 },
          { le: 0.5, count: 1 },
          { le: Number.POSITIVE_INFINITY, count: 3 },
        ],
        sum: 7.5,
        count: 3,
      },
      {
        labels: { task: 'redact' },
        buckets: [
          { le: 0.1, count: 2 },
          { le: 0.5, count: 2 },
          { le: Number.POSITIVE_INFINITY, count: 2 },
        ],
        sum: 0.1,
        count: 2,
      },
    ]);
    expect(families.some((family) => family.name.endsWith('_bucket') || family.name.endsWith('_sum'))).toBe(false);
  });

  test('reads summaries, escaped label values, untyped samples and a last line without newline', () => {
    expect(findFamily(families, 'rpc_seconds')).toMatchObject({
      type: 'summary',
      metrics: [
        {
          labels: {},
          quantiles: [
            { quantile: 0.5, value: 4 },
            { quantile: 0.9, value: 9 },
          ],
          sum: 17,
          count: 3,
        },
      ],
    });
    expect(findFamily(families, 'msdos_file_access_time_seconds')).toMatchObject({
      type: 'untyped',
      metrics: [
        { labels: { path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' }, value: 1.458255915e9 },
      ],
    });
    expect(metricValue(families, 'last_line_without_newline')).toBe(Number.NEGATIVE_INFINITY);
  });

  test('gives GB_ERR_BAD_REQUEST for text that is not the exposition format', () => {
    expect(() => parsePrometheusFamilies('# TYPE x histogrammm\nx 1\n')).toThrow(
      expect.objectContaining({ code: 'GB_ERR_BAD_REQUEST' }),
    );
    expect(() => parsePrometheusFamilies('x{a="1" 2\n')).toThrow(
      expect.objectContaining({ code: 'GB_ERR_BAD_REQUEST' }),
    );
    expect(() => parsePrometheusFamilies('x one\n')).toThrow(expect.objectContaining({ code: 'GB_ERR_BAD_REQUEST' }));
    expect(parsePrometheusFamilies('')).toEqual([]);
  });
});
