/**
 * Whitespace clean-up in linear time. Regexes such as `[ \t]+$` (multiline) or ` *\t *` backtrack over
 * a whole run of blanks from every position inside it, so one line of 60,000 spaces cost 10 s of a
 * frozen event loop (issue 9). These helpers walk each character a bounded number of times.
 */

const SPACE = 0x20;
const TAB = 0x09;
const NEWLINE = 0x0a;

/** Characters `trimEndOf`/`trimStartOf` remove: spaces, spaces and tabs, tabs, or line feeds. */
export type Blank = 'space' | 'blank' | 'tab' | 'newline';

function isBlank(code: number, which: Blank): boolean {
  switch (which) {
    case 'space':
      return code === SPACE;
    case 'blank':
      return code === SPACE || code === TAB;
    case 'tab':
      return code === TAB;
    case 'newline':
      return code === NEWLINE;
  }
}

/** `value` without trailing `which` characters. */
export function trimEndOf(value: string, which: Blank): string {
  let end = value.length;
  while (end > 0 && isBlank(value.charCodeAt(end - 1), which)) end--;
  return end === value.length ? value : value.slice(0, end);
}

/** `value` without leading `which` characters. */
export function trimStartOf(value: string, which: Blank): string {
  let start = 0;
  while (start < value.length && isBlank(value.charCodeAt(start), which)) start++;
  return start === 0 ? value : value.slice(start);
}

/** Each line of `text` (split on `\n`) without trailing spaces and tabs. */
export function trimLineEnds(text: string): string {
  let out = '';
  let from = 0;
  for (;;) {
    const newline = text.indexOf('\n', from);
    const line = text.slice(from, newline < 0 ? text.length : newline);
    out += trimEndOf(line, 'blank');
    if (newline < 0) return out;
    out += '\n';
    from = newline + 1;
  }
}

/** Spaces around each tab of a line removed (`a  \t  b` → `a\tb`). */
export function tightenTabs(line: string): string {
  if (!line.includes('\t')) return line;
  const cells = line.split('\t');
  return cells
    .map((cell, index) => {
      const left = index === 0 ? cell : trimStartOf(cell, 'space');
      return index === cells.length - 1 ? left : trimEndOf(left, 'space');
    })
    .join('\t');
}
