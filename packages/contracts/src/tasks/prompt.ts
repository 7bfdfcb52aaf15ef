import { z } from 'zod';
import { answerInWords, defineTask, SAFE, TextOutput } from './define-task.ts';

export const prompt = defineTask({
  name: 'prompt',
  description: "Apply the caller's instruction to the input.",
  options: z.strictObject({
    /** The caller's instruction, applied to the input. */
    instruction: z.string().min(1).max(20_000),
  }),
  output: TextOutput,
  accepts: ['text', 'image', 'audio'],
  defaultMaxTokens: 512,
  thinking: false,
  promptOption: 'instruction',
  prompt: (o) => ({
    system: `You are a careful assistant working on documents. ${SAFE}`,
    instruction: o.instruction,
    completionCue: '\n',
  }),
  run: (_options, helpers) => answerInWords(helpers),
  reduce: {
    strategy: 'model',
    prompt: (o) => ({
      system: `You combine answers about consecutive parts of one document. ${SAFE}`,
      instruction: `The instruction was: "${o.instruction}". These are the answers for consecutive parts of one document. Combine them into one answer.`,
      completionCue: '\n',
    }),
  },
});
