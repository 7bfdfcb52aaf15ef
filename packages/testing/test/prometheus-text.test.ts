import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { expect, test } from 'vitest';
import { findFamily, metricValue, parsePrometheusFamilies } from '../src/index.ts';

test('reads back what prom-client serves, label sets and histograms included', async () => {
  const registry = new Registry();
  const tokens = new Counter({
    name: 'gembatch_generated_tokens_total',
    help: 'Tokens generated.',
    labelNames: ['node', 'quant'],
    registers: [registry],
  });
  const speed = new Gauge({
    name: 'gembatch_generation_tokens_per_second',
    help: 'Decode "speed"\\per node.',
    labelNames: ['node'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'gembatch_job_duration_seconds',
    help: 'Job latency.',
    labelNames: ['task'],
    buckets: [0.1, 1, 10],
    registers: [registry],
  });
  const sizes = new Summary({
    name: 'gembatch_input_bytes',
    help: 'Input sizes.',
    percentiles: [0.5, 0.9],
    registers: [registry],
  });
  tokens.inc({ node: 'gpu-0', quant: 'Q4_K_M' }, 1500);
  tokens.inc({ node: 'gpu-1', quant: 'Q8_0' }, 20);
  speed.set({ node: 'gpu-0' }, 312.5);
  for (const seconds of [0.05, 0.5, 5, 50]) latency.observe({ task: 'summarize' }, seconds);
  latency.observe({ task: 'redact' }, 0.2);
  for (const bytes of [100, 200, 300]) sizes.observe(bytes);

  const families = parsePrometheusFamilies(await registry.metrics());
  expect(metricValue(families, 'gembatch_generated_tokens_total', { node: 'gpu-0' })).toBe(1500);
  expect(metricValue(families, 'gembatch_generated_tokens_total', { quant: 'Q8_0' })).toBe(20);
  expect(metricValue(families, 'gembatch_generation_tokens_per_second', { node: 'gpu-0' })).toBe(312.5);
  expect(findFamily(families, 'gembatch_generation_tokens_per_second')?.help).toBe('Decode "speed"\\per node.');
  const histogram = findFamily(families, 'gembatch_job_duration_seconds');
  expect(histogram?.type).toBe('histogram');
  if (histogram?.type !== 'histogram') return;
  const summarize = histogram.metrics.find((series) => series.labels.task === 'summarize');
  expect(summarize?.buckets).toEqual([
    { le: 0.1, count: 1 },
    { le: 1, count: 2 },
    { le: 10, count: 3 },
    { le: Number.POSITIVE_INFINITY, count: 4 },
  ]);
  expect(summarize?.count).toBe(4);
  expect(summarize?.sum).toBeCloseTo(55.55);
  expect(histogram.metrics.find((series) => series.labels.task === 'redact')?.count).toBe(1);
  const summary = findFamily(families, 'gembatch_input_bytes');
  expect(summary).toMatchObject({ type: 'summary', metrics: [{ count: 3, sum: 600 }] });
});
