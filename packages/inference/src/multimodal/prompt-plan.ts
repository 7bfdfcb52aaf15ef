import type { TaskPrompt } from '@gembatch/contracts';
import type { ChatContentPart, ChatMessage } from './llama-node-binding.ts';
import type { CheckedMedia } from './media-file-check.ts';

/** Where llama.cpp's mtmd puts each media chunk in a completion prompt (`MTMD_DEFAULT_MEDIA_MARKER`). */
export const MEDIA_MARKER = '<__media__>';

export interface PlannedMedia {
  kind: 'image' | 'audio';
  path: string;
  format: CheckedMedia['format'];
}

/**
 * What the engine host turns into one prompt: chat messages (the model's own template formats
 * them; media travel as `image_url`/`input_audio` parts) or, for a model without a chat
 * template, a completion prompt with one media marker per media file, in order.
 */
export type PromptPlan =
  | { mode: 'chat'; messages: ChatMessage[]; media: PlannedMedia[] }
  | { mode: 'completion'; prompt: string; media: PlannedMedia[] };

/**
 * Strings that llama.cpp would parse as control tokens or media markers when they appear in a
 * document (tokenization parses special tokens): Gemma turn markers, `<|…>`/`<…|>` tokens, BOS/EOS,
 * and the mtmd media marker. A document containing one could end its own turn or shift media.
 */
const CONTROL_TEXT =
  /<(?:start_of_turn|end_of_turn|bos|eos|pad|unk|mask|__media__)>|<\|[^<>\s]{0,32}>|<[^<>\s|]{1,32}\|>/gi;

/** Replaces the `<` of every control-token look-alike with `‹`, so text stays text. */
export function neutralizeControlText(text: string): string {
  return text.replace(CONTROL_TEXT, (match) => `‹${match.slice(1)}`);
}

/** Builds the prompt plan for a request. `chat` says whether the model has a chat template. */
export function planPrompt(
  request: { prompt: TaskPrompt; input: string },
  media: readonly CheckedMedia[],
  chat: boolean,
): PromptPlan {
  const system = neutralizeControlText(request.prompt.system.trim());
  const instruction = neutralizeControlText(request.prompt.instruction.trim());
  const input = neutralizeControlText(request.input);
  const planned = media.map(({ kind, path, format }) => ({ kind, path, format }));
  if (!chat) {
    const head = [system, instruction].filter((part) => part.length > 0).join('\n\n');
    const markers = planned.map(() => `${MEDIA_MARKER}\n`).join('');
    return {
      mode: 'completion',
      prompt: `${head}\n\n${markers}${input}${request.prompt.completionCue}`,
      media: planned,
    };
  }
  const messages: ChatMessage[] = system.length > 0 ? [{ role: 'system', content: system }] : [];
  if (planned.length === 0) {
    messages.push({ role: 'user', content: [instruction, input].filter((part) => part.length > 0).join('\n\n') });
    return { mode: 'chat', messages, media: planned };
  }
  const parts: ChatContentPart[] = [];
  if (instruction.length > 0) parts.push({ type: 'text', text: instruction });
  for (const item of planned) parts.push(mediaPart(item));
  if (input.length > 0) parts.push({ type: 'text', text: input });
  messages.push({ role: 'user', content: parts });
  return { mode: 'chat', messages, media: planned };
}

/** Local paths go in `url`: the binding reads files itself, so no data URL is needed. */
function mediaPart(media: PlannedMedia): ChatContentPart {
  if (media.kind === 'image') return { type: 'image_url', image_url: { url: media.path } };
  return { type: 'input_audio', input_audio: { format: media.format === 'mp3' ? 'mp3' : 'wav', url: media.path } };
}
