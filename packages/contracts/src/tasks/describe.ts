import { z } from 'zod';
import { answerInWords, defineTask, SAFE, TextOutput } from './define-task.ts';

export const describe = defineTask({
  name: 'describe',
  description: 'Describe an image or a scanned page.',
  options: z.strictObject({
    /** What to focus on (e.g. "handwriting", "signatures"). */
    focus: z.string().min(1).max(500).optional(),
  }),
  output: TextOutput,
  accepts: ['image'],
  defaultMaxTokens: 256,
  thinking: false,
  prompt: (o) => ({
    system: `You describe images of documents and photos precisely. ${SAFE}`,
    instruction: `Describe this image${o.focus ? `, focusing on ${o.focus}` : ''}.`,
    completionCue: '\nDescription:',
  }),
  run: (_options, helpers) => answerInWords(helpers),
  reduce: {
    strategy: 'model',
    prompt: (o) => ({
      system: `You combine descriptions of several images. ${SAFE}`,
      instruction: `Combine these descriptions of consecutive pages into one description${o.focus ? `, focusing on ${o.focus}` : ''}.`,
      completionCue: '\nDescription:',
    }),
  },
});
