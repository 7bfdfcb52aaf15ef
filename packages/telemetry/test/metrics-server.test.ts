import { Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import {
  MetricFamily,
  NODE_FAMILIES,
  parsePrometheusText,
  selectSamples,
  startMetricsServer,
  type MetricsServer,
} from '../src/index.ts';

const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(registry: Registry, port = 0): Promise<MetricsServer> {
  const server = await startMetricsServer({ registry, port });
  servers.push(server);
  return server;
}

describe('MetricsServer', () => {
  it('serves the registry at /metrics and answers /healthz, 404 and 405', async () => {
    const registry = new Registry();
    new Gauge({ name: 'gembatch_test_value', help: 'a value', registers: [registry] }).set(7);
    const server = await start(registry);
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);

    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    expect(selectSamples(parsePrometheusText(await response.text()), 'gembatch_test_value')[0]?.value).toBe(7);

    expect((await fetch(new URL('/healthz', server.url))).status).toBe(200);
    expect((await fetch(new URL('/other', server.url))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
  });

  it('answers 500 without crashing when a family cannot be read', async () => {
    const registry = new Registry();
    MetricFamily.register(registry, NODE_FAMILIES.sequences, async () => {
      throw new Error('redis is down');
    });
    const server = await start(registry);
    const response = await fetch(server.url);
    expect(response.status).toBe(500);
    expect(await response.text()).toBe('metrics unavailable\n');
    expect((await fetch(new URL('/healthz', server.url))).status).toBe(200);
  });

  it('refuses a port in use with GB_ERR_CONFIG, and close() is idempotent', async () => {
    const first = await start(new Registry());
    const error = await startMetricsServer({ registry: new Registry(), port: first.port }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GembatchError);
    expect((error as GembatchError).code).toBe('GB_ERR_CONFIG');
    await first.close();
    await first.close();
    await expect(fetch(first.url)).rejects.toThrow();
  });
});
