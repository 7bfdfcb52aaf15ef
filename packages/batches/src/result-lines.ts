import { createHash } from 'node:crypto';
import { GembatchError, type JobResultDocument } from '@gembatch/contracts';
import { getJson, type BlobStore } from '@gembatch/storage';
import type { BatchEndpoint } from './batch-schemas.ts';
import { statusOf, type RequestOutcome } from './request-outcomes.ts';

/** One line of an output or error file, in OpenAI's shape. */
export interface BatchOutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

/** `batch_req_` + 32 hex chars, stable for a batch and line. */
export function requestLineId(batchId: string, index: number): string {
  return `batch_req_${createHash('sha256').update(`${batchId}\n${index}`).digest('hex').slice(0, 32)}`;
}

/** What the output line builder needs of the input line. */
export interface LineContext {
  batchId: string;
  index: number;
  customId: string;
  endpoint: BatchEndpoint;
  /** The request's `model` (chat lines), reported back in the body. */
  model: string | undefined;
  /** The job that served it (its request id), when there was one. */
  jobId: string | undefined;
}

/** An error line (error file). */
export function errorLine(context: LineContext, outcome: Extract<RequestOutcome, { ok: false }>): BatchOutputLine {
  const error = { code: outcome.code, message: outcome.message };
  return {
    id: requestLineId(context.batchId, context.index),
    custom_id: context.customId,
    response: {
      status_code: statusOf(outcome.code),
      request_id: context.jobId ?? requestLineId(context.batchId, context.index),
      body: { error },
    },
    error,
  };
}

/**
 * A success line (output file): the job's result document for `/v1/jobs`, or a chat completion
 * (`choices`, `usage`, `model`) for `/v1/chat/completions`.
 */
export async function successLine(
  context: LineContext,
  outcome: Extract<RequestOutcome, { ok: true }>,
  blobs: BlobStore,
): Promise<BatchOutputLine> {
  const document = await getJson<JobResultDocument>(blobs, outcome.sha).catch((error: unknown) => {
    throw new GembatchError(
      'GB_ERR_INTERNAL',
      `the result of request ${context.index + 1} is missing from the blob store`,
      { cause: error },
    );
  });
  const requestId = context.jobId ?? document.job_id;
  const body = context.endpoint === '/v1/jobs' ? document : chatCompletion(document, context, outcome.at);
  return {
    id: requestLineId(context.batchId, context.index),
    custom_id: context.customId,
    response: { status_code: 200, request_id: requestId, body },
    error: null,
  };
}

function chatCompletion(document: JobResultDocument, context: LineContext, finishedAt: number) {
  const output = document.output as { text?: unknown; data?: unknown };
  const content =
    output.data !== undefined
      ? JSON.stringify(output.data)
      : typeof output.text === 'string'
        ? output.text
        : JSON.stringify(document.output);
  const prompt = document.usage.prompt_tokens;
  const completion = document.usage.generated_tokens;
  return {
    id: `chatcmpl-${document.job_id.slice('job_'.length)}`,
    object: 'chat.completion',
    created: Math.floor(finishedAt / 1000),
    model: context.model ?? document.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null },
        logprobs: null,
        finish_reason: document.finish_reason,
      },
    ],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
    system_fingerprint: `gembatch-${document.model}`,
  };
}
