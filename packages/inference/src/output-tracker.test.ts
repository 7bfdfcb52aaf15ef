import { describe, expect, it } from 'vitest';
import { OutputTracker } from './output-tracker.ts';

/** A toy vocabulary: each token id is an index into these pieces. */
const VOCAB = [
  'Hello',
  ' world',
  '<|channel>',
  'thought\n',
  'let me think',
  '<channel|>',
  '{"a":1}',
  '\n\n\n\n',
  '<turn|>',
  ' more',
  '\n###',
  ' Human',
];
const id = (piece: string) => VOCAB.indexOf(piece);
const piece = (token: number) => VOCAB[token] ?? '';
const plain = (tokens: number[]) =>
  tokens
    .map((t) => VOCAB[t])
    .filter((p) => !p?.startsWith('<'))
    .join('');
const GEMMA = { prefix: '<|channel>thought\n', suffix: '<channel|>' };

function feed(tracker: OutputTracker, pieces: string[]): number {
  let fed = 0;
  for (const p of pieces) {
    fed++;
    if (tracker.push(id(p))) break;
  }
  return fed;
}

describe('OutputTracker', () => {
  it('stops at a stop trigger and leaves it out of the answer', () => {
    const tracker = new OutputTracker({ stopTriggers: ['<turn|>'], thought: GEMMA, startsInThought: false }, piece);
    expect(feed(tracker, ['Hello', ' world', '<turn|>', ' more'])).toBe(3);
    expect(tracker.result(plain)).toEqual({ text: 'Hello world', thoughts: '' });
  });

  it('finds a trigger that spans tokens', () => {
    const tracker = new OutputTracker(
      { stopTriggers: ['\n### Human'], thought: undefined, startsInThought: false },
      piece,
    );
    expect(feed(tracker, ['Hello', '\n###', ' Human', ' more'])).toBe(3);
    expect(tracker.result(plain).text).toBe('Hello');
  });

  it('separates thoughts from the answer; thoughts never reach the text', () => {
    const tracker = new OutputTracker({ stopTriggers: ['<turn|>'], thought: GEMMA, startsInThought: false }, piece);
    feed(tracker, ['<|channel>', 'thought\n', 'let me think', '<channel|>', 'Hello', '<turn|>']);
    expect(tracker.result(plain)).toEqual({ text: 'Hello', thoughts: 'let me think' });
  });

  it('tracks an open thought (the grammar waits for it to close)', () => {
    const tracker = new OutputTracker({ stopTriggers: ['\n\n\n\n'], thought: GEMMA, startsInThought: true }, piece);
    expect(tracker.inThought).toBe(true);
    tracker.push(id('let me think'));
    expect(tracker.inThought).toBe(true);
    tracker.push(id('<channel|>'));
    expect(tracker.inThought).toBe(false);
    feed(tracker, ['{"a":1}', '\n\n\n\n']);
    expect(tracker.result(plain)).toEqual({ text: '{"a":1}', thoughts: 'let me think' });
  });

  it('ignores stop triggers inside a thought', () => {
    const tracker = new OutputTracker({ stopTriggers: [' more'], thought: GEMMA, startsInThought: true }, piece);
    expect(tracker.push(id(' more'))).toBe(false);
    tracker.push(id('<channel|>'));
    expect(tracker.push(id(' more'))).toBe(true);
  });

  it('an unterminated thought stays out of the text', () => {
    const tracker = new OutputTracker({ stopTriggers: [], thought: GEMMA, startsInThought: false }, piece);
    feed(tracker, ['Hello', '<|channel>', 'thought\n', 'let me think']);
    expect(tracker.result(plain)).toEqual({ text: 'Hello', thoughts: 'let me think' });
  });
});
