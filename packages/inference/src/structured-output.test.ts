import { describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import type { Engine, GenerateRequest, GenerateResult } from './engine.ts';
import { generateStructured, parseJsonAnswer } from './structured-output.ts';

const schema = {
  type: 'object',
  properties: { age: { type: 'integer' } },
  required: ['age'],
  additionalProperties: false,
};
const request: GenerateRequest = {
  prompt: { system: '', instruction: 'Extract.', completionCue: '' },
  input: 'doc',
  maxTokens: 32,
};

/** An engine that answers from a script (pure logic test of the repair loop, no model). */
function scripted(answers: string[]): Engine & { requests: GenerateRequest[] } {
  const requests: GenerateRequest[] = [];
  const result = (text: string): GenerateResult => ({
    text,
    finishReason: 'stop',
    promptTokens: 1,
    generatedTokens: 1,
    mediaTokens: 0,
    timeToFirstTokenMs: 1,
    interTokenMs: null,
    totalMs: 1,
  });
  return {
    requests,
    info: {
      engine: 'node-llama-cpp',
      model: 'script',
      quant: 'none',
      accelerator: 'cpu',
      gpu: 'cpu',
      capabilities: ['text'],
      sequences: 1,
      contextPerSequence: 512,
      chat: false,
    },
    generate: async (r) => {
      requests.push(r);
      return result(answers[requests.length - 1] ?? '');
    },
    countTokens: async () => 0,
    countPromptTokens: async () => 0,
    stats: () => ({
      activeSequences: 0,
      promptTokensTotal: 0,
      generationTokensTotal: 0,
      decodeCallsTotal: 0,
      decodeTokensTotal: 0,
      fullDecodeCallsTotal: 0,
      decodeBatchTokens: new Map(),
      vramTotalBytes: 0,
      vramUsedBytes: 0,
    }),
    close: async () => undefined,
  };
}

describe('generateStructured', () => {
  it('returns the first valid answer, generated under the schema', async () => {
    const engine = scripted(['{"age": 41}']);
    const out = await generateStructured(engine, request, { schema });
    expect(out).toMatchObject({ value: { age: 41 }, attempts: 1 });
    expect(engine.requests[0]?.jsonSchema).toEqual(schema);
  });

  it('repairs with the validator message, then succeeds', async () => {
    const engine = scripted(['{"age": 4.5}', '{"age": 4}']);
    const attempts: number[] = [];
    const out = await generateStructured(engine, request, { schema, onAttempt: (_r, n) => attempts.push(n) });
    expect(out.attempts).toBe(2);
    expect(attempts).toEqual([1, 2]);
    expect(engine.requests[1]?.prompt.instruction).toMatch(/must be integer/);
  });

  it('fails with GB_ERR_SCHEMA_VALIDATION and the validator message after the repairs', async () => {
    const engine = scripted(['{"age": "x"}', '{"age": "y"}', '{}']);
    const failure = await generateStructured(engine, request, { schema, maxRepairs: 2 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GembatchError);
    expect((failure as GembatchError).code).toBe('GB_ERR_SCHEMA_VALIDATION');
    expect((failure as GembatchError).message).toMatch(/must have required property 'age'/);
    expect(engine.requests).toHaveLength(3);
  });

  it('an invalid schema is a bad request', async () => {
    const failure = await generateStructured(scripted([]), request, { schema: { type: 'nonsense' } }).catch(
      (e: unknown) => e,
    );
    expect((failure as GembatchError).code).toBe('GB_ERR_BAD_REQUEST');
  });
});

describe('parseJsonAnswer', () => {
  it('reads plain, fenced and embedded JSON', () => {
    expect(parseJsonAnswer(' {"a":1}\n\n')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseJsonAnswer('Here:\n```json\n[1,2]\n```')).toEqual({ ok: true, value: [1, 2] });
    expect(parseJsonAnswer('The answer is {"a": true} as asked')).toEqual({ ok: true, value: { a: true } });
  });

  it('refuses a number too large for a double instead of reading it as Infinity (stored as null)', () => {
    const parsed = parseJsonAnswer(`{"year": ${'9'.repeat(400)}}`);
    expect(parsed).toEqual({ ok: false, error: expect.stringContaining('number too large') });
    expect(parseJsonAnswer(`[{"a": [1, -${'1'.repeat(320)}]}]`).ok).toBe(false);
    expect(parseJsonAnswer('{"a": 1e308, "b": [2]}').ok).toBe(true);
  });

  it('reads an answer nested 50,000 deep without overflowing the stack', () => {
    expect(parseJsonAnswer(`${'['.repeat(50_000)}${']'.repeat(50_000)}`).ok).toBe(true);
  });

  it('never echoes the text in its error', () => {
    const parsed = parseJsonAnswer('secret patient name');
    expect(parsed.ok).toBe(false);
    expect(JSON.stringify(parsed)).not.toMatch(/patient/);
  });
});
