import { z } from 'zod';
import { GembatchError } from '../errors.ts';
import { defineTask } from './define-task.ts';

export const transcribe = defineTask({
  name: 'transcribe',
  description: 'Transcribe speech, with per-segment timestamps.',
  options: z.strictObject({
    /** BCP-47 language hint, e.g. `en`. */
    language: z.string().min(2).max(20).optional(),
  }),
  output: z.strictObject({
    text: z.string(),
    segments: z.array(
      z.strictObject({ start_s: z.number().nonnegative(), end_s: z.number().nonnegative(), text: z.string() }),
    ),
  }),
  accepts: ['audio'],
  defaultMaxTokens: 512,
  thinking: false,
  prompt: (o) => ({
    system: 'You transcribe speech verbatim.',
    instruction: `Transcribe this audio verbatim${o.language ? ` (language: ${o.language})` : ''}. Output only the words spoken.`,
    completionCue: '\nTranscript:',
  }),
  // One engine call per audio segment, so each keeps its own timestamps.
  run: async (_options, helpers) => {
    const audio = helpers.input.media.filter((m) => m.kind === 'audio');
    if (audio.length === 0) throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', 'transcribe needs audio input');
    const segments: Array<{ start_s: number; end_s: number; text: string }> = [];
    for (const part of audio) {
      const text = (await helpers.generate({ media: [{ kind: 'audio', path: part.path }] })).trim();
      segments.push({ start_s: part.startS ?? 0, end_s: part.endS ?? 0, text });
    }
    const text = segments.map((s) => s.text).join(' ');
    return { output: { text, segments }, text };
  },
  reduce: {
    strategy: 'concat',
    merge: (parts) => {
      const text = parts.map((p) => p.text).join('\n');
      return {
        output: { text: parts.map((p) => p.text).join(' '), segments: parts.flatMap((p) => p.output.segments) },
        text,
      };
    },
  },
});
