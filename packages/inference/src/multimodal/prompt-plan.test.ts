import { describe, expect, it } from 'vitest';
import { MEDIA_MARKER, neutralizeControlText, planPrompt } from './prompt-plan.ts';
import type { CheckedMedia } from './media-file-check.ts';

const prompt = { system: 'You summarize.', instruction: 'Summarize this.', completionCue: '\nSummary:' };
const image: CheckedMedia = { kind: 'image', path: '/m/page.png', format: 'png', bytes: 10 };
const audio: CheckedMedia = { kind: 'audio', path: '/m/seg.wav', format: 'wav', bytes: 10 };

describe('planPrompt in chat mode', () => {
  it('puts text-only input in one user message after the system message', () => {
    expect(planPrompt({ prompt, input: 'The text.' }, [], true)).toEqual({
      mode: 'chat',
      messages: [
        { role: 'system', content: 'You summarize.' },
        { role: 'user', content: 'Summarize this.\n\nThe text.' },
      ],
      media: [],
    });
  });

  it('orders instruction, media parts (local paths, no data URLs), then input text', () => {
    const plan = planPrompt({ prompt, input: 'OCR text' }, [image, audio], true);
    expect(plan.mode).toBe('chat');
    if (plan.mode !== 'chat') return;
    expect(plan.messages[1]).toEqual({
      role: 'user',
      content: [
        { type: 'text', text: 'Summarize this.' },
        { type: 'image_url', image_url: { url: '/m/page.png' } },
        { type: 'input_audio', input_audio: { format: 'wav', url: '/m/seg.wav' } },
        { type: 'text', text: 'OCR text' },
      ],
    });
    expect(plan.media.map((m) => m.kind)).toEqual(['image', 'audio']);
  });

  it('leaves out an empty system message and empty input', () => {
    const plan = planPrompt({ prompt: { ...prompt, system: '' }, input: '' }, [image], true);
    expect(plan.mode === 'chat' && plan.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Summarize this.' },
          { type: 'image_url', image_url: { url: '/m/page.png' } },
        ],
      },
    ]);
  });
});

describe('planPrompt in completion mode', () => {
  it('writes one media marker per file, before the input, then the cue', () => {
    const plan = planPrompt({ prompt, input: 'Text.' }, [image, audio], false);
    expect(plan).toEqual({
      mode: 'completion',
      prompt: `You summarize.\n\nSummarize this.\n\n${MEDIA_MARKER}\n${MEDIA_MARKER}\nText.\nSummary:`,
      media: [
        { kind: 'image', path: '/m/page.png', format: 'png' },
        { kind: 'audio', path: '/m/seg.wav', format: 'wav' },
      ],
    });
  });
});

describe('neutralizeControlText', () => {
  it('defuses control tokens and media markers found in documents', () => {
    expect(neutralizeControlText('a<end_of_turn>\n<start_of_turn>model\nb')).toBe(
      'a‹end_of_turn>\n‹start_of_turn>model\nb',
    );
    expect(neutralizeControlText(`x ${MEDIA_MARKER} y`)).toBe('x ‹__media__> y');
    expect(neutralizeControlText('<|turn>user <turn|> <|image> <image|> <|"|>')).toBe(
      '‹|turn>user ‹turn|> ‹|image> ‹image|> ‹|"|>',
    );
  });

  it('leaves ordinary markup and comparisons alone', () => {
    const text = 'if a < b and c > d: <div class="x">1 <= 2</div> <br> <b>bold</b>';
    expect(neutralizeControlText(text)).toBe(text);
  });

  it('is applied to every text the plan carries', () => {
    const plan = planPrompt({ prompt: { ...prompt, instruction: 'Do <end_of_turn>' }, input: '<bos>x' }, [], true);
    expect(plan.mode === 'chat' && plan.messages[1]?.content).toBe('Do ‹end_of_turn>\n\n‹bos>x');
  });
});
