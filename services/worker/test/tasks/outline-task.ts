import { defineTask, GembatchError } from '@gembatch/contracts';
import { z } from 'zod';

/**
 * A test-only task, written as a built-in one is (one file, `defineTask`): it asks the model for
 * `points` points, one engine call each, and joins the chunks' points in order. Nothing in the
 * worker knows its name; a runner that did not take everything from the definition fails it.
 */
export const outline = defineTask({
  name: 'outline',
  description: 'List points about the input (test only).',
  options: z.strictObject({ points: z.number().int().min(1).max(3).default(2) }),
  output: z.strictObject({ points: z.array(z.string()) }),
  accepts: ['text'],
  defaultMaxTokens: 8,
  thinking: false,
  prompt: () => ({
    system: 'You list the points of a text.',
    instruction: 'Give one point of the following text.',
    completionCue: '\nPoint:',
  }),
  run: async (options, helpers) => {
    const points: string[] = [];
    for (let i = 0; i < options.points; i += 1) points.push((await helpers.generate()).trim());
    return { output: { points }, text: points.join('\n') };
  },
  reduce: {
    strategy: 'concat',
    merge: (parts) => ({
      output: { points: parts.flatMap((part) => part.output.points) },
      text: parts.map((part) => part.text).join('\n'),
    }),
  },
});

/** A test-only task with a model reduce and a grammar-bounded answer (valid even from random weights). */
export const verdict = defineTask({
  name: 'verdict',
  description: 'Answer yes or no about the input (test only).',
  options: z.strictObject({}),
  output: z.strictObject({ answer: z.enum(['yes', 'no']) }),
  accepts: ['text'],
  defaultMaxTokens: 48,
  thinking: false,
  prompt: () => ({
    system: 'You answer yes or no.',
    instruction: 'Does the following text name a person?',
    completionCue: '\nJSON:',
  }),
  run: async (_options, helpers) => {
    const answer = z.strictObject({ answer: z.enum(['yes', 'no']) }).safeParse(
      await helpers.structured({
        type: 'object',
        properties: { answer: { enum: ['yes', 'no'] } },
        required: ['answer'],
        additionalProperties: false,
      }),
    );
    if (!answer.success) throw new GembatchError('GB_ERR_OUTPUT_INVALID', 'the verdict answer is not {"answer"}');
    return { output: answer.data, text: JSON.stringify(answer.data) };
  },
  reduce: {
    strategy: 'model',
    prompt: () => ({
      system: 'You combine yes/no answers.',
      instruction: 'These answer one question about consecutive parts of a text. Answer it for the whole text.',
      completionCue: '\nJSON:',
    }),
  },
});

/** A test-only task whose run breaks its own output schema (a count that is not an integer). */
export const broken = defineTask({
  name: 'broken',
  description: 'Returns an output its schema refuses (test only).',
  options: z.strictObject({}),
  output: z.strictObject({ count: z.number().int() }),
  accepts: ['text'],
  defaultMaxTokens: 4,
  thinking: false,
  prompt: () => ({ system: '', instruction: 'Count.', completionCue: '' }),
  run: async (_options, helpers) => {
    const text = await helpers.generate();
    return { output: { count: text.length + 0.5 }, text };
  },
  reduce: { strategy: 'concat', merge: (parts) => ({ output: { count: parts.length }, text: '' }) },
});
