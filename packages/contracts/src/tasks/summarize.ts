import { z } from 'zod';
import { answerInWords, defineTask, SAFE, TextOutput } from './define-task.ts';

const LENGTH_WORDS = {
  short: 'in two or three sentences',
  medium: 'in one paragraph',
  long: 'in several paragraphs covering every section',
} as const;

export const summarize = defineTask({
  name: 'summarize',
  description: 'Summarize a document, scan, image or recording.',
  options: z.strictObject({
    /** Target length. Defaults to `medium`. */
    length: z.enum(['short', 'medium', 'long']).default('medium'),
    /** Who reads the summary (e.g. "a judge", "the patient"). Defaults to a general reader. */
    audience: z.string().min(1).max(200).optional(),
  }),
  output: TextOutput,
  accepts: ['text', 'image', 'audio'],
  defaultMaxTokens: 256,
  thinking: false,
  prompt: (o) => ({
    system: `You summarize documents accurately and concisely. ${SAFE}`,
    instruction: `Summarize the following ${LENGTH_WORDS[o.length]}${o.audience ? ` for ${o.audience}` : ''}.`,
    completionCue: '\nSummary:',
  }),
  run: (_options, helpers) => answerInWords(helpers),
  reduce: {
    strategy: 'model',
    prompt: (o) => ({
      system: `You combine partial summaries of one long document into one summary. ${SAFE}`,
      instruction: `These are summaries of consecutive parts of one document. Write one summary of the whole ${LENGTH_WORDS[o.length]}${o.audience ? ` for ${o.audience}` : ''}.`,
      completionCue: '\nSummary:',
    }),
  },
});
