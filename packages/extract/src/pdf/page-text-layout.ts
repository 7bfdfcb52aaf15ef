/** The part of a pdf.js text item that layout needs. */
export interface PositionedText {
  str: string;
  /** Text matrix `[a, b, c, d, e, f]`; `e`, `f` are the baseline origin in user space. */
  transform: readonly number[];
  width: number;
  height: number;
  hasEOL: boolean;
}

// Why 7 user-space units (≈ 2.5 mm): wider than any word space at body sizes, narrower than a table gutter.
const MIN_CELL_GAP = 7;
// Why 2: sub- and superscripts shift the baseline by a fraction of the font size, never less than 2 units at readable sizes.
const MIN_LINE_SHIFT = 2;

/**
 * Joins pdf.js text items into lines the way a reader sees them: a new line when the baseline
 * moves by more than half the font height, a tab where a gap on the same line is wider than a
 * word space (table columns) — or where the next item starts that far left of the last one's end
 * (cells a generator wrote right to left, a page number drawn before its running head) — the
 * item's own end-of-line marks kept. Trailing spaces are trimmed
 * and runs of blank lines collapsed.
 */
export function layoutPageText(items: readonly PositionedText[]): string {
  const parts: string[] = [];
  let lastY: number | undefined;
  let lastEndX: number | undefined;
  let lastHeight = 0;
  const endsWithBreak = () => {
    const last = parts[parts.length - 1];
    return last === undefined || last.endsWith('\n');
  };
  for (const item of items) {
    const x = item.transform[4] ?? 0;
    const y = item.transform[5] ?? 0;
    if (item.str.length > 0) {
      if (lastY !== undefined && lastEndX !== undefined) {
        const lineShift = Math.max(MIN_LINE_SHIFT, Math.min(lastHeight || item.height, item.height || lastHeight) / 2);
        if (Math.abs(y - lastY) > lineShift) {
          if (!endsWithBreak()) parts.push('\n');
        } else if (
          Math.abs(x - lastEndX) > Math.max(MIN_CELL_GAP, item.height) &&
          !endsWithBreak() &&
          !/\s$/.test(parts[parts.length - 1] ?? '') &&
          !/^\s/.test(item.str)
        ) {
          parts.push('\t');
        }
      }
      parts.push(item.str);
      lastY = y;
      lastEndX = x + item.width;
      lastHeight = item.height;
    }
    if (item.hasEOL && !endsWithBreak()) parts.push('\n');
  }
  return tidyPageText(parts.join(''));
}

/** Trims trailing blanks from lines, keeps at most one empty line in a row, and trims the page. */
export function tidyPageText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/[ \t]+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Characters other than whitespace: how much real text a page layer holds. */
export function countVisibleChars(text: string): number {
  return text.replace(/\s+/g, '').length;
}
