import { describe, expect, it } from 'vitest';
import { NodeStats, encodeNodeStats } from './node-stats.ts';

const stats: NodeStats = {
  node: 'gpu-a',
  host: 'h',
  gpu: 'cpu',
  accelerator: 'cpu',
  engine: 'llama.node',
  model: 'm',
  quant: 'Q8_0',
  capabilities: ['text', 'image', 'audio'],
  started_at: 1,
  heartbeat_at: 2,
  sequences: 4,
  active_sequences: 1,
  context_per_sequence: 1024,
  generation_tokens_per_second: 1.5,
  prompt_tokens_per_second: 0,
  generation_tokens_total: 10,
  prompt_tokens_total: 20,
  decode_calls_total: 3,
  vram_total_bytes: 0,
  vram_used_bytes: 0,
  ram_used_bytes: 1,
};

describe('NodeStats in a Redis hash', () => {
  it('round-trips through encodeNodeStats, capabilities as a typed list', () => {
    const fields = encodeNodeStats(stats);
    expect(Object.values(fields).every((value) => typeof value === 'string')).toBe(true);
    expect(NodeStats.parse(fields)).toEqual(stats);
  });

  it('reads the comma-joined capabilities of a record written before the list type, and drops names it does not know', () => {
    const fields = { ...encodeNodeStats(stats), capabilities: 'text,video,audio' };
    expect(NodeStats.parse(fields).capabilities).toEqual(['text', 'audio']);
  });

  it('takes a list as is (objects built in code)', () => {
    expect(NodeStats.parse({ ...encodeNodeStats(stats), capabilities: ['image', 'text'] }).capabilities).toEqual([
      'image',
      'text',
    ]);
  });
});
