import type { Redis } from 'ioredis';
import type { BlobStore } from '@gembatch/storage';
import type { BatchRecord } from './batch-store.ts';
import { readInputLines } from './input-lines.ts';
import { readRequestStates, type RequestOutcome } from './request-outcomes.ts';
import { errorLine, successLine, type BatchOutputLine, type LineContext } from './result-lines.ts';

/** Lines looked up per round trip: large enough to amortise Redis, small enough to hold (contexts only, never line text). */
const LOOKUP_CHUNK = 256;

/** One input line's result, in input order. */
export interface ResultEntry {
  index: number;
  kind: 'output' | 'error';
  line: BatchOutputLine;
}

export interface ResultStreamDeps {
  redis: Redis;
  prefix: string;
  blobStore: BlobStore;
}

export interface ResultStreamOptions {
  /**
   * What a request without an outcome becomes: `skip` (still running, or never run in a cancelled
   * batch) or an error line with this outcome (an expired batch's unfinished requests).
   */
  unfinished: 'skip' | Extract<RequestOutcome, { ok: false }>;
  /** Build success lines (they read each result document); false when only errors are wanted. Defaults to `true`. */
  outputs?: boolean;
}

/**
 * Streams a batch's results in input order by walking its input file once: for each chunk of
 * lines, the request hash says which job served each line (or its inline error) and the outcome
 * hash says how that job ended. Holds one chunk of small contexts at a time, never all results.
 */
export async function* streamResults(
  deps: ResultStreamDeps,
  record: BatchRecord,
  options: ResultStreamOptions,
): AsyncGenerator<ResultEntry> {
  const path = await deps.blobStore.path(record.input_sha256);
  let chunk: Array<Omit<LineContext, 'jobId'>> = [];
  const flush = async function* (): AsyncGenerator<ResultEntry> {
    if (chunk.length === 0) return;
    const states = await readRequestStates(
      deps.redis,
      deps.prefix,
      record.id,
      chunk.map((c) => c.index),
    );
    const built = await Promise.all(
      chunk.map(async (context, i): Promise<ResultEntry | undefined> => {
        const { jobId, outcome } = states[i] ?? { jobId: undefined, outcome: undefined };
        const full = { ...context, jobId };
        if (!outcome)
          return options.unfinished === 'skip'
            ? undefined
            : { index: context.index, kind: 'error', line: errorLine(full, options.unfinished) };
        if (!outcome.ok) return { index: context.index, kind: 'error', line: errorLine(full, outcome) };
        if (options.outputs === false) return undefined;
        return { index: context.index, kind: 'output', line: await successLine(full, outcome, deps.blobStore) };
      }),
    );
    chunk = [];
    for (const entry of built) if (entry) yield entry;
  };
  for await (const line of readInputLines(path)) {
    if (line.index >= record.total) break;
    chunk.push({
      batchId: record.id,
      index: line.index,
      endpoint: record.endpoint,
      ...lineIdentity(line.text, line.index),
    });
    if (chunk.length >= LOOKUP_CHUNK) yield* flush();
  }
  yield* flush();
}

/** The custom_id and model of a line already validated (a line that fails here was counted as an error at validation). */
function lineIdentity(text: string, index: number): { customId: string; model: string | undefined } {
  try {
    const value = JSON.parse(text) as { custom_id?: unknown; body?: { model?: unknown } };
    return {
      customId: typeof value.custom_id === 'string' ? value.custom_id : `line-${index + 1}`,
      model: typeof value.body?.model === 'string' ? value.body.model : undefined,
    };
  } catch {
    return { customId: `line-${index + 1}`, model: undefined };
  }
}
