import { z } from 'zod';
import { GembatchError } from '../errors.ts';
import { defineTask, SAFE } from './define-task.ts';
import {
  IDENTIFIER_TYPES,
  detectIdentifiers,
  findLiterals,
  maskSpans,
  mergeSpans,
  type IdentifierType,
  type Span,
} from './redaction.ts';
import { transcribe } from './transcribe.ts';

/** What the model is asked for: the identifiers no pattern finds. */
const ENTITIES_SCHEMA = {
  type: 'object',
  properties: {
    names: { type: 'array', items: { type: 'string' }, maxItems: 200 },
    addresses: { type: 'array', items: { type: 'string' }, maxItems: 200 },
  },
  required: ['names', 'addresses'],
  additionalProperties: false,
};
const Entities = z.object({ names: z.array(z.string()), addresses: z.array(z.string()) });

export const redact = defineTask({
  name: 'redact',
  description: 'Mask personal and health identifiers; return masked text and the spans.',
  options: z.strictObject({
    /** Which kinds of identifiers to mask. Defaults to all. */
    types: z.array(z.enum(IDENTIFIER_TYPES)).min(1).optional(),
  }),
  output: z.strictObject({
    text: z.string(),
    spans: z.array(
      z.strictObject({
        start: z.number().int().nonnegative(),
        end: z.number().int().nonnegative(),
        type: z.enum(IDENTIFIER_TYPES),
      }),
    ),
  }),
  accepts: ['text', 'image', 'audio'],
  defaultMaxTokens: 512,
  thinking: false,
  prompt: () => ({
    system: `You find personal names and street addresses in text for redaction. ${SAFE}`,
    instruction:
      'List every person name and street address in the following text, exactly as written, as JSON {"names": [...], "addresses": [...]}.',
    completionCue: '\nJSON:',
  }),
  // Deterministic detectors for what has a pattern, the model for names and addresses.
  run: async (options, helpers) => {
    const types = options.types;
    const wants = (type: IdentifierType) => !types || types.includes(type);
    let text = helpers.input.text;
    if (text.length === 0 && helpers.input.media.length > 0) {
      // Media (a recording, a photo): the model first turns it into text, which is then redacted.
      text = (await helpers.generate({ prompt: transcribe.prompt({}) })).trim();
    }
    // A blank chunk of a long text has nothing to mask: it passes through, so the joined output keeps every character.
    if (text.trim().length === 0) return { output: { text, spans: [] }, text };
    const spans: Span[] = detectIdentifiers(text, types);
    if (wants('name') || wants('address')) {
      // The grammar and the validator hold the answer to ENTITIES_SCHEMA; this only gives it its type.
      const parsed = Entities.safeParse(await helpers.structured(ENTITIES_SCHEMA, { input: text, media: [] }));
      if (!parsed.success)
        throw new GembatchError('GB_ERR_OUTPUT_INVALID', 'the redact answer is not {"names", "addresses"}');
      const found = parsed.data;
      if (wants('name')) spans.push(...findLiterals(text, found.names, 'name'));
      if (wants('address')) spans.push(...findLiterals(text, found.addresses, 'address'));
    }
    const merged = mergeSpans(spans);
    const masked = maskSpans(text, merged);
    return { output: { text: masked, spans: merged }, text: masked };
  },
  // Masked texts join with nothing between them, and each chunk's spans shift by the text before it.
  reduce: {
    strategy: 'concat',
    merge: (parts) => {
      let offset = 0;
      const spans: Span[] = [];
      const texts: string[] = [];
      for (const { output } of parts) {
        spans.push(...output.spans.map((s) => ({ ...s, start: s.start + offset, end: s.end + offset })));
        texts.push(output.text);
        offset += output.text.length;
      }
      return { output: { text: texts.join(''), spans }, text: parts.map((p) => p.text).join('\n') };
    },
  },
});
