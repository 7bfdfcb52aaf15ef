import { describe, expect, it } from 'vitest';
import { imageCoverage, type CoverageOps } from './image-coverage.ts';

const OPS: CoverageOps = {
  save: 1,
  restore: 2,
  transform: 3,
  paintFormXObjectBegin: 4,
  paintFormXObjectEnd: 5,
  imagePainters: new Set([9]),
};
const LETTER = [0, 0, 612, 792];

describe('imageCoverage', () => {
  it('measures a full-page scan as 1 and a small logo as a small share', () => {
    expect(imageCoverage([1, 3, 9, 2], [null, [612, 0, 0, 792, 0, 0], ['img'], null], OPS, LETTER)).toBe(1);
    expect(imageCoverage([1, 3, 9, 2], [null, [61.2, 0, 0, 79.2, 50, 700], ['img'], null], OPS, LETTER)).toBeCloseTo(
      0.01,
      5,
    );
  });

  it('follows save/restore, nested transforms and form XObject matrices', () => {
    const fn = [1, 3, 1, 3, 9, 2, 2, 9, 4, 9, 5];
    const args = [
      null,
      [2, 0, 0, 2, 0, 0],
      null,
      [153, 0, 0, 198, 0, 0],
      ['a'],
      null,
      null,
      ['b'],
      [
        [306, 0, 0, 396, 0, 0],
        [0, 0, 1, 1],
      ],
      ['c'],
      null,
    ];
    // a: 306×396 (a quarter); b: unit square at identity (~0); c: 306×396 through the form matrix (a quarter).
    expect(imageCoverage(fn, args, OPS, LETTER)).toBeCloseTo(0.5, 3);
  });

  it('clips images to the page box and caps the total at 1', () => {
    expect(imageCoverage([3, 9], [[1224, 0, 0, 792, -306, 0], ['wide']], OPS, LETTER)).toBe(1);
    expect(imageCoverage([3, 9], [[612, 0, 0, 792, 612, 0], ['off-page']], OPS, LETTER)).toBe(0);
    expect(imageCoverage([3, 9, 9, 9], [[612, 0, 0, 792, 0, 0], ['x'], ['y'], ['z']], OPS, LETTER)).toBe(1);
  });

  it('handles rotated and flipped matrices and degenerate pages', () => {
    expect(imageCoverage([3, 9], [[0, 792, -612, 0, 612, 0], ['rotated']], OPS, LETTER)).toBe(1);
    expect(imageCoverage([3, 9], [[612, 0, 0, -792, 0, 792], ['flipped']], OPS, LETTER)).toBe(1);
    expect(imageCoverage([9], [['x']], OPS, [0, 0, 0, 0])).toBe(0);
  });
});
