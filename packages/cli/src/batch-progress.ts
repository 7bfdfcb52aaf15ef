import type { BatchObject } from './api-client.ts';

/** Minimum time between two lines when the output is not a terminal (ms), so logs stay readable. */
const PLAIN_INTERVAL_MS = 5_000;

/**
 * The live progress bar of a batch: `[#####-----] 120/500 done · 3 failed · 45.2 tok/s · ETA 1m 20s`.
 * Redrawn in place on a TTY; on anything else a line per change at most every 5 s.
 */
export class BatchProgress {
  readonly #out: NodeJS.WritableStream | undefined;
  readonly #tty: boolean;
  readonly #now: () => number;
  #first: { at: number; finished: number; tokens: number | undefined } | undefined;
  #last = '';
  #lastPlainAt = 0;
  #drawn = false;

  constructor(out: NodeJS.WritableStream | undefined, now: () => number = Date.now) {
    this.#out = out;
    this.#tty = Boolean((out as NodeJS.WriteStream | undefined)?.isTTY);
    this.#now = now;
  }

  /** The line for this batch state (also what `update` draws). */
  line(batch: Pick<BatchObject, 'status' | 'request_counts' | 'usage'>): string {
    const { total, completed, failed } = batch.request_counts;
    // Before validation has counted the lines there is nothing to draw a bar of.
    if (batch.status === 'validating' && total === 0) return 'validating the input…';
    const finished = completed + failed;
    const now = this.#now();
    const tokens = batch.usage?.output_tokens ?? undefined;
    this.#first ??= { at: now, finished, tokens };
    const seconds = (now - this.#first.at) / 1000;
    const width = 30;
    const filled = total === 0 ? 0 : Math.min(width, Math.round((finished / total) * width));
    const parts = [
      `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${finished}/${total} done`,
      `${failed} failed`,
    ];
    if (tokens !== undefined && this.#first.tokens !== undefined && seconds > 0)
      parts.push(`${((tokens - this.#first.tokens) / seconds).toFixed(1)} tok/s`);
    const rate = seconds > 0 ? (finished - this.#first.finished) / seconds : 0;
    if (total > 0 && finished < total && rate > 0) parts.push(`ETA ${formatDuration((total - finished) / rate)}`);
    parts.push(batch.status);
    return parts.join(' · ');
  }

  update(batch: Pick<BatchObject, 'status' | 'request_counts' | 'usage'>): void {
    const line = this.line(batch);
    if (!this.#out || line === this.#last) return;
    this.#last = line;
    if (this.#tty) {
      this.#out.write(`\r\x1b[2K${line}`);
      this.#drawn = true;
    } else if (this.#now() - this.#lastPlainAt >= PLAIN_INTERVAL_MS) {
      this.#lastPlainAt = this.#now();
      this.#out.write(`${line}\n`);
    }
  }

  /** Ends the bar (a newline on a TTY; the last state on anything else). */
  finish(batch: Pick<BatchObject, 'status' | 'request_counts' | 'usage'>): void {
    const line = this.line(batch);
    if (!this.#out) return;
    if (this.#tty) this.#out.write(`${this.#drawn ? '\r\x1b[2K' : ''}${line}\n`);
    else if (line !== this.#last || this.#lastPlainAt === 0) this.#out.write(`${line}\n`);
  }
}

/** `45s`, `3m 05s`, `2h 10m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
