import { z } from 'zod';
import { GembatchError } from '../errors.ts';
import { defineTask, SAFE, type JsonSchema } from './define-task.ts';

/** Confidence in tenths: a grammar cannot bound a free number, an enum it can. */
const CONFIDENCE_STEPS = Array.from({ length: 11 }, (_, i) => i / 10);

function classifySchema(labels: readonly string[]): JsonSchema {
  return {
    type: 'object',
    properties: { label: { type: 'string', enum: labels }, confidence: { enum: CONFIDENCE_STEPS } },
    required: ['label', 'confidence'],
    additionalProperties: false,
  };
}

const Classification = z.strictObject({ label: z.string(), confidence: z.number().min(0).max(1) });

export const classify = defineTask({
  name: 'classify',
  description: "Choose one of the caller's labels, with a confidence.",
  options: z.strictObject({
    /** The labels to choose from (2..100, unique). */
    labels: z
      .array(z.string().min(1).max(100))
      .min(2)
      .max(100)
      .refine((labels) => new Set(labels).size === labels.length, { message: 'labels must be unique' }),
  }),
  output: Classification,
  accepts: ['text', 'image', 'audio'],
  defaultMaxTokens: 64,
  thinking: false,
  prompt: (o) => ({
    system: `You classify documents. ${SAFE}`,
    instruction: `Classify the following input as exactly one of: ${o.labels.map((l) => JSON.stringify(l)).join(', ')}. Answer with JSON {"label": ..., "confidence": 0..1}.`,
    completionCue: '\nJSON:',
  }),
  run: async (options, helpers) => {
    // The grammar and the validator hold the answer to the schema; this only gives it its type.
    const value = Classification.safeParse(await helpers.structured(classifySchema(options.labels)));
    if (!value.success)
      throw new GembatchError('GB_ERR_OUTPUT_INVALID', 'the classify answer is not {"label", "confidence"}');
    return { output: value.data, text: JSON.stringify(value.data) };
  },
  reduce: {
    strategy: 'model',
    prompt: (o) => ({
      system: `You combine classifications of consecutive parts of one document. ${SAFE}`,
      instruction: `Each line classifies one part of a document as one of ${o.labels.map((l) => JSON.stringify(l)).join(', ')}. Give the label for the whole document as JSON {"label": ..., "confidence": 0..1}.`,
      completionCue: '\nJSON:',
    }),
  },
});
