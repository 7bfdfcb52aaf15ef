import { describe, expect, it } from 'vitest';
import { NODE_FAMILIES } from './metrics-catalog.ts';
import { nodeFamilySamples, type NodeStatsFields } from './metrics-node-families.ts';

const stats: NodeStatsFields = {
  node: 'gpu-a',
  gpu: 'cpu',
  accelerator: 'cpu',
  engine: 'node-llama-cpp',
  model: 'm',
  quant: 'Q8_0',
  capabilities: ['text'],
  started_at: 0,
  sequences: 16,
  active_sequences: 0,
  context_per_sequence: 1024,
  generation_tokens_per_second: 0,
  prompt_tokens_per_second: 0,
  generation_tokens_total: 10,
  prompt_tokens_total: 1000,
  decode_calls_total: 1,
  vram_total_bytes: 0,
  vram_used_bytes: 0,
  ram_used_bytes: 1,
};

describe('step time family', () => {
  it('exports each part of a node’s generating time, and nothing for a node that does not measure it', () => {
    const samples = nodeFamilySamples([
      {
        stats: {
          ...stats,
          step_decode_seconds_total: 12.5,
          step_sampling_seconds_total: 3.25,
          step_scheduling_seconds_total: 0.5,
        },
      },
      { stats: { ...stats, node: 'old-node' } },
    ]);
    expect(samples.get(NODE_FAMILIES.stepSecondsTotal)).toEqual([
      { labels: { node: 'gpu-a', part: 'decode' }, value: 12.5 },
      { labels: { node: 'gpu-a', part: 'sampling' }, value: 3.25 },
      { labels: { node: 'gpu-a', part: 'scheduling' }, value: 0.5 },
    ]);
  });
});

describe('prompt-token reuse families', () => {
  it('export reused and evaluated prompt tokens per node', () => {
    const samples = nodeFamilySamples([
      { stats: { ...stats, prompt_tokens_reused_total: 900, prompt_tokens_evaluated_total: 100 } },
    ]);
    expect(samples.get(NODE_FAMILIES.promptTokensReusedTotal)).toEqual([
      { labels: { node: 'gpu-a', model: 'm', quant: 'Q8_0' }, value: 900 },
    ]);
    expect(samples.get(NODE_FAMILIES.promptTokensEvaluatedTotal)).toEqual([
      { labels: { node: 'gpu-a', model: 'm', quant: 'Q8_0' }, value: 100 },
    ]);
  });

  it('a node that does not report them reused nothing and evaluated every prompt token', () => {
    const samples = nodeFamilySamples([{ stats }]);
    expect(samples.get(NODE_FAMILIES.promptTokensReusedTotal)?.[0]).toMatchObject({ value: 0 });
    expect(samples.get(NODE_FAMILIES.promptTokensEvaluatedTotal)?.[0]).toMatchObject({ value: 1000 });
  });
});
