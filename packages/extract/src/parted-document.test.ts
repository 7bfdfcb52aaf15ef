import type { ExtractedDocument } from '@gembatch/contracts';
import { describe, expect, it } from 'vitest';
import { joinedDocument, partedDocument, textRuns, type PartedDocument } from './parted-document.ts';

const base: ExtractedDocument = {
  media_type: 'application/pdf',
  text: '',
  pages: [],
  media: [],
  kinds: ['text'],
  meta: {},
  warnings: [],
};

describe('PartedDocument', () => {
  it('joins parts with a blank line, as pages are joined', () => {
    expect(joinedDocument({ document: base, textParts: ['one', '', 'three'] }).text).toBe('one\n\n\n\nthree');
    expect(joinedDocument(partedDocument({ ...base, text: 'whole' }))).toEqual({ ...base, text: 'whole' });
  });

  it('hands the text over in runs, in order, cutting long parts and gathering short ones, without losing a separator', () => {
    const parted: PartedDocument = {
      document: base,
      textParts: ['a'.repeat(25), 'bb', 'c', '', 'd'.repeat(7), 'e'.repeat(3)],
    };
    const runs = [...textRuns(parted, 10)].map((run) => run.join(''));
    expect(runs.join('')).toBe(joinedDocument(parted).text);
    // Every run but the last reaches the size; none reaches twice of it.
    for (const run of runs.slice(0, -1)) expect(run.length).toBeGreaterThanOrEqual(10);
    for (const run of runs) expect(run.length).toBeLessThan(20);
    expect([...textRuns({ document: base, textParts: [''] }, 10)]).toEqual([]);
  });
});
