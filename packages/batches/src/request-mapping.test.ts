import { describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { parseInputLine, planRequest } from './request-mapping.ts';

const png = Buffer.from('89504e470d0a1a0a', 'hex').toString('base64');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof GembatchError ? `${error.code}: ${error.message}` : String(error);
  }
  return undefined;
}

describe('planRequest', () => {
  it('checks base64 in linear time: newlines and trailing whitespace are allowed, anything else is refused', () => {
    const audio = (data: string) => ({
      messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data, format: 'wav' } }] }],
    });
    expect(planRequest('/v1/chat/completions', audio(`${png.slice(0, 4)}\r\n${png.slice(4)}\n`)).input).toMatchObject({
      type: 'media',
    });
    const started = Date.now();
    expect(codeOf(() => planRequest('/v1/chat/completions', audio(`${'\n'.repeat(100_000)}!`)))).toMatch(
      /^GB_ERR_BAD_REQUEST: .*not valid base64/,
    );
    // Quadratic backtracking took about a minute here; linear is milliseconds.
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('runs the operator check on the plan, so a batch line meets the same caps as POST /v1/jobs', () => {
    const check = (plan: { metadata?: Record<string, string> }) => {
      if (Object.keys(plan.metadata ?? {}).length > 1)
        throw new GembatchError('GB_ERR_BAD_REQUEST', 'metadata: too many keys');
    };
    expect(
      codeOf(() => planRequest('/v1/jobs', { text: 'x', task: 'summarize', metadata: { a: '1', b: '2' } }, check)),
    ).toBe('GB_ERR_BAD_REQUEST: metadata: too many keys');
    expect(planRequest('/v1/jobs', { text: 'x', task: 'summarize', metadata: { a: '1' } }, check).metadata).toEqual({
      a: '1',
    });
  });

  it('maps a text chat onto a prompt job: system text is the instruction, the user turn the input, limits and schema carried', () => {
    const plan = planRequest('/v1/chat/completions', {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Answer in French.' },
        { role: 'user', content: 'Hello there' },
      ],
      max_completion_tokens: 12,
      temperature: 0.3,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } } } },
      },
    });
    expect(plan).toEqual({
      input: { type: 'text', text: 'Hello there' },
      task: 'prompt',
      options: { instruction: 'Answer in French.' },
      maxTokens: 12,
      temperature: 0.3,
      jsonSchema: { type: 'object', properties: { a: { type: 'string' } } },
    });
  });

  it('keeps a multi-turn conversation as a transcript, and media as the input with the words as the instruction', () => {
    const chat = planRequest('/v1/chat/completions', {
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
        { role: 'user', content: 'Again?' },
      ],
    });
    expect(chat.input).toEqual({ type: 'text', text: 'User: Hi\n\nAssistant: Hello\n\nUser: Again?' });
    const image = planRequest('/v1/chat/completions', {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Describe it.' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
          ],
        },
      ],
      max_tokens: 5,
    });
    expect(image).toMatchObject({
      input: { type: 'media', base64: png, filename: 'image.png' },
      options: { instruction: 'Describe it.' },
      maxTokens: 5,
    });
    const byId = planRequest('/v1/chat/completions', {
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: { url: 'file_0123456789abcdef0123456789abcdef' } }] },
      ],
    });
    expect(byId.input).toEqual({ type: 'file', fileId: 'file_0123456789abcdef0123456789abcdef' });
    const audio = planRequest('/v1/chat/completions', {
      messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: png, format: 'wav' } }] }],
    });
    expect(audio).toMatchObject({
      input: { type: 'media', filename: 'audio.wav' },
      options: { instruction: 'Respond to the attached input.' },
    });
  });

  it('refuses what it cannot honour, per request, naming the field', () => {
    const user = (content: unknown) => ({ messages: [{ role: 'user', content }] });
    expect(codeOf(() => planRequest('/v1/chat/completions', { messages: [] }))).toMatch(
      /^GB_ERR_BAD_REQUEST: body.messages/,
    );
    expect(
      codeOf(() =>
        planRequest(
          '/v1/chat/completions',
          user([{ type: 'image_url', image_url: { url: 'https://example.com/x.png' } }]),
        ),
      ),
    ).toMatch(/never fetches remote URLs/);
    expect(
      codeOf(() =>
        planRequest(
          '/v1/chat/completions',
          user([
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
            { type: 'input_audio', input_audio: { data: png, format: 'wav' } },
          ]),
        ),
      ),
    ).toMatch(/one image, audio or file part/);
    expect(codeOf(() => planRequest('/v1/chat/completions', { ...user('hi'), tools: [{ type: 'function' }] }))).toMatch(
      /body.tools: is not supported/,
    );
    expect(codeOf(() => planRequest('/v1/chat/completions', { ...user('hi'), n: 2 }))).toMatch(
      /^GB_ERR_BAD_REQUEST: body.n/,
    );
    expect(
      codeOf(() => planRequest('/v1/jobs', { text: 'x', task: 'classify', options: { labels: ['only-one'] } })),
    ).toMatch(/^GB_ERR_BAD_REQUEST: body.options.labels/);
    expect(codeOf(() => planRequest('/v1/jobs', { text: 'x', task: 'transcribe' }))).toMatch(
      /takes audio input, not text/,
    );
  });

  it('parses request lines and refuses malformed ones', () => {
    expect(parseInputLine('{"custom_id":"a","method":"POST","url":"/v1/jobs","body":{}}')).toEqual({
      custom_id: 'a',
      method: 'POST',
      url: '/v1/jobs',
      body: {},
    });
    expect(codeOf(() => parseInputLine('{oops'))).toBe('GB_ERR_BATCH_INPUT_INVALID: not valid JSON');
    expect(codeOf(() => parseInputLine('{"custom_id":"a","method":"GET","url":"/v1/jobs","body":{}}'))).toMatch(
      /line.method/,
    );
  });
});
