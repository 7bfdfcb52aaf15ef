import { describe, expect, it } from 'vitest';
import { promqlMetricNames, substituteGrafanaVariables } from './promql-names.ts';

describe('promqlMetricNames (test helper)', () => {
  it('finds metric names and nothing else', () => {
    expect(
      promqlMetricNames('sum by (node) (rate(gembatch_generation_tokens_total{node=~"$node"}[$__rate_interval]))'),
    ).toEqual(['gembatch_generation_tokens_total']);
    expect(promqlMetricNames('a{kind="x"} / on (node) (b{kind="y"} > 0) > 0.95 and c offset 5m')).toEqual([
      'a',
      'b',
      'c',
    ]);
    expect(promqlMetricNames('histogram_quantile(0.95, sum by (le, task) (rate(x_bucket[5m])))')).toEqual(['x_bucket']);
    expect(promqlMetricNames('deriv(sum by (queue) (q{state=~"waiting|prioritized"})[5m:1m]) > 1e9')).toEqual(['q']);
    expect(promqlMetricNames('label_values(gembatch_node_info, node)')).toEqual(['gembatch_node_info', 'node']);
  });

  it('replaces Grafana variables', () => {
    expect(substituteGrafanaVariables('rate(x{n=~"$node",m=~"${queue}"}[$__rate_interval])')).toBe(
      'rate(x{n=~".*",m=~".*"}[1m])',
    );
  });
});
