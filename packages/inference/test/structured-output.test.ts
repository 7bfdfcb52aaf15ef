import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { GembatchError } from '@gembatch/contracts';
import { ensureTestModel } from '@gembatch/testing';
import { generateStructured } from '../src/index.ts';
import { openEngine } from './engine-fixture.ts';

const PROMPT = {
  system: 'You extract data and answer with JSON.',
  instruction: 'Extract the fields.',
  completionCue: '\nJSON:',
};

describe('structured output with a real model under the grammar', () => {
  it('returns JSON that the validator accepts', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: 512,
    });
    const schema = {
      type: 'object',
      properties: {
        label: { enum: ['invoice', 'letter', 'contract'] },
        urgent: { type: 'boolean' },
        pages: { type: 'array', items: { type: 'boolean' }, maxItems: 3 },
      },
      required: ['label', 'urgent', 'pages'],
      additionalProperties: false,
    };
    const out = await generateStructured(
      engine,
      { prompt: PROMPT, input: 'Invoice 42, due today.', maxTokens: 96 },
      { schema },
    );
    expect(new Ajv().validate(schema, out.value)).toBe(true);
    expect(out.attempts).toBe(1);
    expect(out.result.finishReason).toBe('stop');
  });

  it('thinking requested on a chat model without thought segments: the grammar applies from the first token', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tinyChat'),
      sequences: 2,
      contextPerSequence: 512,
    });
    const schema = {
      type: 'object',
      properties: { ok: { type: 'boolean' } },
      required: ['ok'],
      additionalProperties: false,
    };
    const [thinking, plain] = await Promise.all([
      generateStructured(engine, { prompt: PROMPT, input: 'Is it ok?', maxTokens: 32, thinking: true }, { schema }),
      generateStructured(engine, { prompt: PROMPT, input: 'Is it ok?', maxTokens: 32 }, { schema }),
    ]);
    for (const out of [thinking, plain]) expect(new Ajv().validate(schema, out.value)).toBe(true);
  });

  it('fails with GB_ERR_SCHEMA_VALIDATION and the validator message when the grammar cannot enforce the schema', async () => {
    const engine = await openEngine({
      modelPath: await ensureTestModel('tiny'),
      sequences: 1,
      contextPerSequence: 1024,
    });
    // node-llama-cpp's grammar ignores `pattern`: only the validator catches it.
    const schema = {
      type: 'object',
      properties: { code: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{4}$' } },
      required: ['code'],
      additionalProperties: false,
    };
    let attempts = 0;
    const failure = await generateStructured(
      engine,
      { prompt: PROMPT, input: 'Case ABC-1234.', maxTokens: 48 },
      { schema, maxRepairs: 1, onAttempt: () => attempts++ },
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GembatchError);
    expect((failure as GembatchError).code).toBe('GB_ERR_SCHEMA_VALIDATION');
    expect((failure as GembatchError).message).toMatch(/must match pattern|not valid JSON|cut at/);
    expect(attempts).toBe(2);
  });
});
