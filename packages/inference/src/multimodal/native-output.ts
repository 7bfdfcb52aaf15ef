import type { Readable } from 'node:stream';
import type { Logger } from '@gembatch/telemetry';

/**
 * Lines that llama.cpp, mtmd and rn-llama print as structure (loader, context, backend and slot
 * messages, assertions). Only these are ever forwarded: mtmd also prints the prompt it builds
 * (`add_text: …`, spread over as many lines as the text has), and those lines must not reach logs.
 */
const STRUCTURAL_LINE =
  /^(?:\[(?:INFO|WARNING|ERROR)\] [A-Za-z_]+:\d+ |(?:llama|ggml|clip|mtmd|load|print_info|sched|graph|init|warmup|get_dummy|reserve|alloc|create_tensor|done_getting|set_abort|attach|detach|adapters|set_adapters)[a-z_]*: |GGML_ASSERT|GGML_ABORT|terminate called| {2}what\(\):|(?:en|de)coding (?:image|audio)|(?:image|audio)(?: slice)? (?:encoded|decoded))/;

/** Lines that can carry prompt text or grammars even though they look structural. */
const CONTENT_LINE =
  /^(?:add_text|add_media|Generation prompt|\[INFO\] \w+:\d+ \[DEBUG\] Processing (?:message|\d+ media))|::=/;

/** Lines worth keeping to explain a crash (assertion and exception text, never prompts). */
const CRASH_LINE =
  /GGML_ASSERT|GGML_ABORT|terminate called|what\(\):|Segmentation fault|out of memory|CUDA error|^(?:[A-Z]\w*)?Error(?: \[\w+\])?: /i;

/** Crash lines kept: the last few are enough to name the assertion. */
const CRASH_LINES_KEPT = 10;
/** Longest line kept or forwarded; longer ones are cut. */
const MAX_LINE_CHARS = 300;
/** A line longer than this without a newline is flushed as is, so a runaway write cannot grow memory. */
const MAX_PENDING_CHARS = 65_536;

/**
 * Where the engine host's stdout and stderr go: llama.cpp writes its log there (rn-llama even
 * uses `printf` to stdout, which could otherwise interleave with the service's JSON log). By
 * default every line is dropped; with `forward`, structural lines go to the logger at debug.
 * Crash-related lines are always kept in memory so an unexpected exit can be explained.
 */
export class NativeOutputSink {
  readonly #crashes: string[] = [];

  readonly #logger: Logger;
  readonly #forward: boolean;

  /**
   * @param logger Receives forwarded lines at debug level, as `{ source, line }`.
   * @param forward Forward structural lines. Defaults to `false` (everything dropped).
   */
  constructor(logger: Logger, forward = false) {
    this.#logger = logger;
    this.#forward = forward;
  }

  /** Reads a stream line by line until it ends. */
  attach(stream: Readable, source: 'stdout' | 'stderr'): void {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        this.push(pending.slice(0, newline), source);
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
      if (pending.length > MAX_PENDING_CHARS) {
        this.push(pending, source);
        pending = '';
      }
    });
    stream.on('end', () => {
      if (pending.length > 0) this.push(pending, source);
    });
  }

  /** Handles one line of native output. */
  push(rawLine: string, source: 'stdout' | 'stderr'): void {
    const line = rawLine.replace(/\r$/, '').slice(0, MAX_LINE_CHARS);
    if (CRASH_LINE.test(line)) {
      this.#crashes.push(line);
      if (this.#crashes.length > CRASH_LINES_KEPT) this.#crashes.shift();
    }
    if (
      this.#forward &&
      (STRUCTURAL_LINE.test(line) || CRASH_LINE.test(line)) &&
      !CONTENT_LINE.test(line) &&
      this.#logger.isLevelEnabled('debug')
    ) {
      this.#logger.debug({ source, line }, 'llama.cpp');
    }
  }

  /** The last assertion/exception lines seen (for the log line of an unexpected exit). */
  crashLines(): string[] {
    return [...this.#crashes];
  }
}
