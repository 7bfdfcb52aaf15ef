import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { JOB_HISTOGRAMS, NODE_FAMILIES } from './metrics-catalog.ts';
import { MetricFamily } from './metrics-family.ts';
import { cumulativeHistogram } from './metrics-samples.ts';
import { parsePrometheusText, selectSamples } from './metrics-text-parser.ts';
import { ScrapeSnapshot } from './metrics-scrape-snapshot.ts';

describe('MetricFamily', () => {
  it('serves gauges and histograms through a prom-client registry beside built-in metrics', async () => {
    const registry = new Registry();
    let tokensPerSecond = 12.5;
    MetricFamily.register(registry, NODE_FAMILIES.generationTokensPerSecond, () => [
      { labels: { node: 'n1' }, value: tokensPerSecond },
    ]);
    MetricFamily.register(registry, JOB_HISTOGRAMS.timeToFirstToken, () => [
      cumulativeHistogram(
        { task: 'summarize' },
        new Map([
          [0.1, 2],
          [1, 1],
        ]),
        [0.1, 1],
        7,
        4,
      ),
    ]);
    new Counter({ name: 'other_total', help: 'built in', registers: [registry] }).inc(3);

    const text = await registry.metrics();
    const parsed = parsePrometheusText(text);
    expect(parsed.errors).toEqual([]);
    expect(parsed.types.get('gembatch_time_to_first_token_seconds')).toBe('histogram');
    expect(text).toContain('# HELP gembatch_node_generation_tokens_per_second');
    expect(selectSamples(parsed, 'gembatch_node_generation_tokens_per_second', { node: 'n1' })[0]?.value).toBe(12.5);
    const buckets = selectSamples(parsed, 'gembatch_time_to_first_token_seconds_bucket', { task: 'summarize' }).map(
      (s) => [s.labels.le, s.value],
    );
    expect(buckets).toEqual([
      ['0.1', 2],
      ['1', 3],
      ['+Inf', 4],
    ]);
    expect(selectSamples(parsed, 'gembatch_time_to_first_token_seconds_sum')[0]?.value).toBe(7);
    expect(selectSamples(parsed, 'gembatch_time_to_first_token_seconds_count')[0]?.value).toBe(4);
    expect(selectSamples(parsed, 'other_total')[0]?.value).toBe(3);

    tokensPerSecond = 0;
    expect(
      selectSamples(parsePrometheusText(await registry.metrics()), 'gembatch_node_generation_tokens_per_second')[0]
        ?.value,
    ).toBe(0);
  });

  it('lets all families of one scrape share one snapshot read', async () => {
    let reads = 0;
    const snapshot = new ScrapeSnapshot(async () => ++reads);
    const registry = new Registry();
    MetricFamily.register(registry, NODE_FAMILIES.sequences, async () => [
      { labels: { node: 'n' }, value: await snapshot.get() },
    ]);
    MetricFamily.register(registry, NODE_FAMILIES.activeSequences, async () => [
      { labels: { node: 'n' }, value: await snapshot.get() },
    ]);
    const first = parsePrometheusText(await registry.metrics());
    expect(reads).toBe(1);
    expect(selectSamples(first, 'gembatch_node_active_sequences')[0]?.value).toBe(1);
    await registry.metrics();
    expect(reads).toBe(2);
  });
});
