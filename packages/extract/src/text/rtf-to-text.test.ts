import { describe, expect, it } from 'vitest';
import { rtfToText } from './rtf-to-text.ts';

describe('rtfToText', () => {
  it('extracts paragraphs, skips font tables, info and ignorable destinations', () => {
    const rtf = String.raw`{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Helvetica;}}{\colortbl;\red255\green0\blue0;}{\info{\title Secret title}{\author A}}{\*\generator Writer;}
\pard\f0\fs24 Referral letter\par
Dear colleague,\line please see the patient \b today\b0 .\par
{\*\bkmkstart x}Caf\'e9 \'80 5\tab ok\par}`;
    expect(rtfToText(rtf)).toBe('Referral letter\nDear colleague,\nplease see the patient today.\nCafé € 5\tok');
  });

  it('decodes \\u escapes and skips their fallback characters', () => {
    expect(rtfToText(String.raw`{\rtf1\uc1 Stra\u223?e \u-10179?\u-8704? ok}`)).toBe(
      'Straße \u{1F600} ok'.replace('\u{1F600}', '\ud83d\ude00'),
    );
  });

  it('keeps escaped braces and backslashes and turns table cells into tabs', () => {
    expect(rtfToText(String.raw`{\rtf1 a\{b\}c\\d\par\trowd\cellx1000 A\cell B\cell\row}`)).toBe('a{b}c\\d\nA\tB');
  });
});
