import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HttpMetrics } from './metrics-http.ts';
import { parsePrometheusText, selectSamples } from './metrics-text-parser.ts';

describe('HttpMetrics', () => {
  it('counts requests by method, route pattern and status, with bounded labels', async () => {
    const registry = new Registry();
    const metrics = new HttpMetrics(registry);
    metrics.observeRequest({ method: 'GET', route: '/v1/jobs/:id', status: 200, durationMs: 12 });
    metrics.observeRequest({ method: 'GET', route: '/v1/jobs/:id', status: 200, durationMs: 30 });
    metrics.observeRequest({ method: 'BREW', route: undefined, status: 404, durationMs: 1 });
    metrics.observeUpload(3 * 1024 ** 2);
    const parsed = parsePrometheusText(await registry.metrics());
    expect(selectSamples(parsed, 'gembatch_http_requests_total', { route: '/v1/jobs/:id' })).toEqual([{ name: 'gembatch_http_requests_total', labels: { method: 'GET', route: '/v1/jobs/:id', status: '200' }, value: 2 }]);
    expect(selectSamples(parsed, 'gembatch_http_requests_total', { method: 'OTHER', route: 'unmatched', status: '404' })[0]?.value).toBe(1);
    expect(selectSamples(parsed, 'gembatch_http_request_duration_seconds_bucket', { route: '/v1/jobs/:id', le: '0.025' })[0]?.value).toBe(1);
    expect(selectSamples(parsed, 'gembatch_upload_bytes_bucket', { le: String(4 * 1024 ** 2) })[0]?.value).toBe(1);
    expect(selectSamples(parsed, 'gembatch_upload_bytes_sum')[0]?.value).toBe(3 * 1024 ** 2);
  });
});
