import { z } from 'zod';
import { defineTask, JsonSchemaObject, SAFE } from './define-task.ts';

export const extract = defineTask({
  name: 'extract',
  description: "Extract fields into the caller's JSON Schema.",
  options: z.strictObject({
    /** JSON Schema the output must satisfy. */
    schema: JsonSchemaObject,
  }),
  output: z.strictObject({ data: z.unknown() }),
  accepts: ['text', 'image', 'audio'],
  defaultMaxTokens: 1024,
  thinking: false,
  schemaOption: 'schema',
  prompt: () => ({
    system: `You extract structured data from documents and answer only with JSON. ${SAFE}`,
    instruction:
      'Extract the fields described by the JSON Schema from the following input. Use null where a value is absent.',
    completionCue: '\nJSON:',
  }),
  run: async (options, helpers) => {
    const data = await helpers.structured(options.schema);
    return { output: { data }, text: JSON.stringify(data) };
  },
  reduce: {
    strategy: 'model',
    prompt: () => ({
      system: `You merge JSON extracted from consecutive parts of one document and answer only with JSON. ${SAFE}`,
      instruction:
        'Merge these JSON objects, extracted from consecutive parts of one document, into one object that satisfies the schema. Prefer non-null values.',
      completionCue: '\nJSON:',
    }),
  },
});
