import type { Redis } from 'ioredis';
import type { BlobStore } from '@gembatch/storage';
import type { BatchRecord } from './batch-store.ts';
import { readInputLines } from './input-lines.ts';
import { readRequestStates } from './request-outcomes.ts';

/** Why 200: one page of the console's request table; each row may cost the caller a job lookup. */
export const MAX_REQUEST_PAGE = 200;

/** One request of a batch as the console lists it: where it stands, never its text or result. */
export interface BatchRequestEntry {
  /** 0-based index among the input's request lines. */
  index: number;
  custom_id: string;
  /** The job that serves it; null while not handed to the queues yet, or when it failed before becoming a job. */
  job_id: string | null;
  /** `pending`: not handed to the queues yet; `queued`: a job exists and has not finished; then how it ended. */
  status: 'pending' | 'queued' | 'completed' | 'failed';
  /** Unix ms the request finished. */
  finished_at: number | null;
  error: { code: string; message: string } | null;
}

export interface BatchRequestPage {
  data: BatchRequestEntry[];
  /** Requests in the batch (0 until validated). */
  total: number;
  offset: number;
  has_more: boolean;
}

export interface RequestListDeps {
  redis: Redis;
  prefix: string;
  blobStore: BlobStore;
}

/**
 * A page of a batch's requests in input order, from its input file and its request and outcome
 * hashes (the same reads as `streamResults`, but every line, finished or not). Reads custom ids
 * only: no request body, prompt or result leaves here. When the input's bytes are gone (deleted
 * after the batch ended) or the per-request hashes expired, the page is empty.
 */
export async function listBatchRequests(
  deps: RequestListDeps,
  record: BatchRecord,
  options: { offset?: number; limit?: number } = {},
): Promise<BatchRequestPage> {
  const offset = Math.max(0, options.offset ?? 0);
  const limit = Math.min(MAX_REQUEST_PAGE, Math.max(1, options.limit ?? 50));
  const page: BatchRequestPage = { data: [], total: record.total, offset, has_more: offset + limit < record.total };
  if (
    record.total === 0 ||
    offset >= record.total ||
    !(await deps.blobStore.has(record.input_sha256).catch(() => false))
  )
    return page;
  const lines: Array<{ index: number; customId: string }> = [];
  for await (const line of readInputLines(await deps.blobStore.path(record.input_sha256))) {
    if (line.index >= record.total || line.index >= offset + limit) break;
    if (line.index >= offset) lines.push({ index: line.index, customId: customIdOf(line.text, line.index) });
  }
  if (lines.length === 0) return page;
  const states = await readRequestStates(
    deps.redis,
    deps.prefix,
    record.id,
    lines.map((l) => l.index),
  );
  page.data = lines.map((line, i): BatchRequestEntry => {
    const { jobId = null, outcome } = states[i] ?? { jobId: undefined, outcome: undefined };
    const status = outcome ? (outcome.ok ? 'completed' : 'failed') : jobId ? 'queued' : 'pending';
    return {
      index: line.index,
      custom_id: line.customId,
      job_id: jobId,
      status,
      finished_at: outcome?.at ?? null,
      error: outcome && !outcome.ok ? { code: outcome.code, message: outcome.message } : null,
    };
  });
  return page;
}

/** The line's custom_id (validated lines have one; the fallback mirrors the result lines'). */
function customIdOf(text: string, index: number): string {
  try {
    const value = JSON.parse(text) as { custom_id?: unknown };
    return typeof value.custom_id === 'string' ? value.custom_id : `line-${index + 1}`;
  } catch {
    return `line-${index + 1}`;
  }
}
