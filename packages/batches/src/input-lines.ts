import { createReadStream } from 'node:fs';
import { GembatchError } from '@gembatch/contracts';

/** One line of a JSONL file, without its line ending. */
export interface InputLine {
  /** 0-based line index among request lines (blank lines are skipped and not counted). */
  index: number;
  /** 1-based physical line number, for error messages. */
  lineNumber: number;
  text: string;
  /** Byte offset just past this line's end (where the next read resumes). */
  nextByte: number;
}

/**
 * Why 64 MiB: a chat line may carry an image or a recording as a base64 data URL; above this a
 * caller should upload the file and reference its id. One line is the most that is ever held.
 */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

export interface ReadLinesOptions {
  /** Byte offset to start at (a line boundary). Defaults to `0`. */
  startByte?: number;
  /** Index of the first line read (when resuming). Defaults to `0`. */
  startIndex?: number;
  /** Physical line number of the first line read (when resuming). Defaults to `1`. */
  startLineNumber?: number;
}

/**
 * Streams a JSONL file's non-blank lines with their positions, holding one line at a time. Lines
 * may end in `\n` or `\r\n`; the last may have no ending. A line above `MAX_LINE_BYTES` fails with
 * `GB_ERR_BATCH_INPUT_INVALID` naming its line number.
 */
export async function* readInputLines(path: string, options: ReadLinesOptions = {}): AsyncGenerator<InputLine> {
  let index = options.startIndex ?? 0;
  let lineNumber = options.startLineNumber ?? 1;
  let offset = options.startByte ?? 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const emit = (buffer: Buffer, endByte: number): InputLine | undefined => {
    let text = buffer.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    const line = text.trim() === '' ? undefined : { index, lineNumber, text, nextByte: endByte };
    if (line) index += 1;
    lineNumber += 1;
    return line;
  };
  for await (const chunk of createReadStream(path, {
    start: offset,
    highWaterMark: 1024 * 1024,
  }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      const piece = chunk.subarray(start, newline);
      const whole = pending.length > 0 ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      pendingBytes = 0;
      offset += newline - start + 1;
      if (whole.length > MAX_LINE_BYTES) throw tooLong(lineNumber);
      const line = emit(whole, offset);
      if (line) yield line;
      start = newline + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      pending.push(Buffer.from(rest));
      pendingBytes += rest.length;
      offset += rest.length;
      if (pendingBytes > MAX_LINE_BYTES) throw tooLong(lineNumber);
    }
  }
  if (pendingBytes > 0) {
    const line = emit(Buffer.concat(pending), offset);
    if (line) yield line;
  }
}

function tooLong(lineNumber: number): GembatchError {
  return new GembatchError(
    'GB_ERR_BATCH_INPUT_INVALID',
    `line ${lineNumber}: longer than ${MAX_LINE_BYTES} bytes; upload large media as files and reference their ids`,
    { details: { line: lineNumber } },
  );
}
