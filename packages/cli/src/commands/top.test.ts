import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FLEET_FAMILIES,
  JOB_COUNTERS,
  MetricFamily,
  counterIncrement,
  decodeMetricFields,
  registerJobFamilies,
  registerNodeFamilies,
  Registry,
  startMetricsServer,
  type MetricsServer,
  type NodeMetricsInput,
} from '@gembatch/telemetry';
import { runTop } from './top.ts';

const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function node(name: string, tokensPerSecond: number): NodeMetricsInput {
  return {
    stats: {
      node: name,
      gpu: 'RTX 4090',
      accelerator: 'cuda',
      engine: 'node-llama-cpp',
      model: 'gemma-4-12b',
      quant: 'Q4_K_M',
      capabilities: ['text'],
      started_at: 0,
      sequences: 8,
      active_sequences: 3,
      context_per_sequence: 8192,
      generation_tokens_per_second: tokensPerSecond,
      prompt_tokens_per_second: 400,
      generation_tokens_total: 1234,
      prompt_tokens_total: 5678,
      decode_calls_total: 10,
      vram_total_bytes: 24 * 1024 ** 3,
      vram_used_bytes: 9 * 1024 ** 3,
      ram_used_bytes: 2 * 1024 ** 3,
    },
  };
}

/** A /metrics endpoint serving the exporter's families (through the same telemetry code). */
async function exporterLike(): Promise<MetricsServer> {
  const registry = new Registry();
  registerNodeFamilies(registry, () => [node('gpu-b', 35.25), node('gpu-a', 120)]);
  registerJobFamilies(registry, () =>
    decodeMetricFields([
      counterIncrement(JOB_COUNTERS.jobs, ['summarize', 'completed'], 7),
      counterIncrement(JOB_COUNTERS.jobs, ['summarize', 'failed'], 2),
      counterIncrement(JOB_COUNTERS.errors, ['GB_ERR_PDF_INVALID'], 2),
    ]),
  );
  MetricFamily.register(registry, FLEET_FAMILIES.queueJobs, () => [
    { labels: { queue: 'generate', state: 'waiting' }, value: 12 },
    { labels: { queue: 'generate', state: 'active' }, value: 6 },
  ]);
  MetricFamily.register(registry, FLEET_FAMILIES.redisUp, () => [{ labels: {}, value: 1 }]);
  const server = await startMetricsServer({ registry });
  servers.push(server);
  return server;
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { stream, text: () => text };
}

describe('gembatch top', () => {
  it('--once prints per-node tok/s, sequences, memory and the queues', async () => {
    const server = await exporterLike();
    const out = capture();
    expect(await runTop(['--once', '--url', server.url], out.stream)).toBe(0);
    const text = out.text();
    expect(text).toContain(
      'fleet: 2 nodes  gen 155 tok/s  prompt 800 tok/s  sequences 6/16  jobs 7 completed, 2 failed',
    );
    const lines = text.split('\n');
    const header = lines.findIndex((l) => l.startsWith('NODE'));
    expect(lines[header]).toMatch(/^NODE\s+MODEL\s+QUANT\s+GEN TOK\/S\s+PROMPT TOK\/S\s+SEQ\s+VRAM\s+RAM\s+TOKENS$/);
    expect(lines[header + 1]).toMatch(
      /^gpu-a\s+gemma-4-12b\s+Q4_K_M\s+120\s+400\s+3\/8\s+9\.0G\/24\.0G\s+2\.0G\s+1234$/,
    );
    expect(lines[header + 2]).toMatch(/^gpu-b\s.*\s35\.3\s/);
    expect(text).toMatch(/^generate\s+12\s+6\s+0\s+0\s+0\s+0\s+0$/m);
    expect(text).toContain('errors: GB_ERR_PDF_INVALID 2');
  });

  it('--once exits 1 with a readable message when the exporter is not there', async () => {
    const server = await exporterLike();
    const url = server.url;
    await server.close();
    const out = capture();
    const err = capture();
    expect(await runTop(['--once', '--url', url], out.stream, { err: err.stream })).toBe(1);
    expect(err.text()).toMatch(/cannot reach the exporter at http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(out.text()).toBe('');
  });

  it('refreshes until its signal aborts, then returns 0', async () => {
    const server = await exporterLike();
    const out = capture();
    const controller = new AbortController();
    let frames = 0;
    out.stream.on('data', () => {
      if (++frames === 3) controller.abort();
    });
    expect(await runTop(['--url', server.url, '--interval', '0.1'], out.stream, { signal: controller.signal })).toBe(0);
    expect(out.text().match(/^gembatch top/gm)).toHaveLength(3);
  });

  it('rejects bad flags with exit code 2', async () => {
    const err = capture();
    expect(await runTop(['--interval', '0'], capture().stream, { err: err.stream })).toBe(2);
    expect(await runTop(['--bogus'], capture().stream, { err: err.stream })).toBe(2);
    expect(await runTop(['--url', 'not a url', '--once'], capture().stream, { err: err.stream })).toBe(2);
    expect(err.text()).toContain('--interval must be');
  });
});
