import type { Registry } from 'prom-client';
import type { Accelerator, EngineName, NodeCapability } from '@gembatch/contracts';
import { JOB_COUNTERS, JOB_HISTOGRAMS, NODE_FAMILIES, type FamilySpec } from './metrics-catalog.ts';
import { MetricFamily } from './metrics-family.ts';
import { counterSamples, histogramSamples, type StoredFamilies } from './metrics-fields.ts';
import type { HistogramSample, ScalarSample } from './metrics-samples.ts';

/** What a node publishes: the fields of `NodeStats` (`@gembatch/contracts`) its series are made of. */
export interface NodeStatsFields {
  node: string;
  gpu: string;
  accelerator: Accelerator;
  engine: EngineName;
  model: string;
  quant: string;
  /** What the model takes (`text`, `image`, `audio`); one label, joined by `,`. */
  capabilities: readonly NodeCapability[];
  /** ms since epoch. */
  started_at: number;
  sequences: number;
  active_sequences: number;
  context_per_sequence: number;
  generation_tokens_per_second: number;
  prompt_tokens_per_second: number;
  generation_tokens_total: number;
  prompt_tokens_total: number;
  prompt_tokens_reused_total?: number | undefined;
  prompt_tokens_evaluated_total?: number | undefined;
  decode_calls_total: number;
  step_decode_seconds_total?: number | undefined;
  step_sampling_seconds_total?: number | undefined;
  step_scheduling_seconds_total?: number | undefined;
  vram_total_bytes: number;
  vram_used_bytes: number;
  ram_used_bytes: number;
  ram_total_bytes?: number | undefined;
}

/** One node's series at scrape time. */
export interface NodeMetricsInput {
  stats: NodeStatsFields;
  /** Tokens per decode call, labelled `{node}`; absent before the node's first decode. */
  decodeBatchTokens?: HistogramSample | undefined;
}

type NodeSource = () => readonly NodeMetricsInput[] | Promise<readonly NodeMetricsInput[]>;

function scalar(nodes: readonly NodeMetricsInput[], pick: (stats: NodeStatsFields) => number): ScalarSample[] {
  return nodes.map(({ stats }) => ({ labels: { node: stats.node }, value: pick(stats) }));
}

function memory(nodes: readonly NodeMetricsInput[]): ScalarSample[] {
  const samples: ScalarSample[] = [];
  for (const { stats } of nodes) {
    samples.push({ labels: { node: stats.node, kind: 'vram_total' }, value: stats.vram_total_bytes });
    samples.push({ labels: { node: stats.node, kind: 'vram_used' }, value: stats.vram_used_bytes });
    samples.push({ labels: { node: stats.node, kind: 'ram_used' }, value: stats.ram_used_bytes });
    if (stats.ram_total_bytes !== undefined && stats.ram_total_bytes > 0)
      samples.push({ labels: { node: stats.node, kind: 'ram_total' }, value: stats.ram_total_bytes });
  }
  return samples;
}

/** Each node's generating time by part, for the nodes whose engine measures it. */
function stepSeconds(nodes: readonly NodeMetricsInput[]): ScalarSample[] {
  return nodes.flatMap(({ stats }) => {
    const parts = {
      decode: stats.step_decode_seconds_total,
      sampling: stats.step_sampling_seconds_total,
      scheduling: stats.step_scheduling_seconds_total,
    };
    return Object.entries(parts).flatMap(([part, value]) =>
      value === undefined ? [] : [{ labels: { node: stats.node, part }, value }],
    );
  });
}

/** Each node family's series, from the nodes' stats. */
export function nodeFamilySamples(
  nodes: readonly NodeMetricsInput[],
): Map<FamilySpec, ReadonlyArray<ScalarSample | HistogramSample>> {
  const tokens = (pick: (stats: NodeStatsFields) => number) =>
    nodes.map(({ stats }) => ({
      labels: { node: stats.node, model: stats.model, quant: stats.quant },
      value: pick(stats),
    }));
  return new Map<FamilySpec, ReadonlyArray<ScalarSample | HistogramSample>>([
    [
      NODE_FAMILIES.info,
      nodes.map(({ stats }) => ({
        labels: {
          node: stats.node,
          gpu: stats.gpu,
          accelerator: stats.accelerator,
          model: stats.model,
          quant: stats.quant,
          engine: stats.engine,
          capabilities: stats.capabilities.join(','),
        },
        value: 1,
      })),
    ],
    [NODE_FAMILIES.generationTokensPerSecond, scalar(nodes, (s) => s.generation_tokens_per_second)],
    [NODE_FAMILIES.promptTokensPerSecond, scalar(nodes, (s) => s.prompt_tokens_per_second)],
    [NODE_FAMILIES.generationTokensTotal, tokens((s) => s.generation_tokens_total)],
    [NODE_FAMILIES.promptTokensTotal, tokens((s) => s.prompt_tokens_total)],
    [NODE_FAMILIES.promptTokensReusedTotal, tokens((s) => s.prompt_tokens_reused_total ?? 0)],
    [NODE_FAMILIES.promptTokensEvaluatedTotal, tokens((s) => s.prompt_tokens_evaluated_total ?? s.prompt_tokens_total)],
    [NODE_FAMILIES.activeSequences, scalar(nodes, (s) => s.active_sequences)],
    [NODE_FAMILIES.sequences, scalar(nodes, (s) => s.sequences)],
    [NODE_FAMILIES.contextTokens, scalar(nodes, (s) => s.context_per_sequence)],
    [NODE_FAMILIES.decodeCallsTotal, scalar(nodes, (s) => s.decode_calls_total)],
    [NODE_FAMILIES.stepSecondsTotal, stepSeconds(nodes)],
    [NODE_FAMILIES.decodeBatchTokens, nodes.flatMap((n) => (n.decodeBatchTokens ? [n.decodeBatchTokens] : []))],
    [NODE_FAMILIES.memoryBytes, memory(nodes)],
    // Prometheus convention: start times in seconds (`process_start_time_seconds`).
    [NODE_FAMILIES.startTimeSeconds, scalar(nodes, (s) => s.started_at / 1000)],
  ]);
}

/**
 * Registers every per-node family in `registry`, read from `source` at scrape time. The source is
 * called once per family per scrape; wrap a slow one in a `ScrapeSnapshot`.
 */
export function registerNodeFamilies(registry: Registry, source: NodeSource): void {
  for (const spec of Object.values(NODE_FAMILIES)) {
    MetricFamily.register(registry, spec, async () => nodeFamilySamples(await source()).get(spec) ?? []);
  }
}

/** Registers the job histograms and counters, read from stored bucket fields at scrape time. */
export function registerJobFamilies(registry: Registry, source: () => StoredFamilies | Promise<StoredFamilies>): void {
  for (const spec of Object.values(JOB_HISTOGRAMS))
    MetricFamily.register(registry, spec, async () => histogramSamples(spec, await source()));
  for (const spec of Object.values(JOB_COUNTERS))
    MetricFamily.register(registry, spec, async () => counterSamples(spec, await source()));
}
