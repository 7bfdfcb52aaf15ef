import { z } from 'zod';
import {
  CreateJobRequest,
  FILE_ID_PATTERN,
  GembatchError,
  JsonSchemaObject,
  MAX_TOKENS_LIMIT,
  TASK_NAMES,
} from '@gembatch/contracts';

/**
 * The shapes of the OpenAI Batch API as gembatch speaks them: what `POST /v1/batches` takes, what a
 * batch object looks like, and what one input line holds. Kept compatible with the official SDKs.
 */

/** Statuses, in OpenAI's words. */
export const BATCH_STATUSES = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
/** Statuses after which nothing changes. */
export const FINAL_BATCH_STATUSES: readonly BatchStatus[] = ['failed', 'completed', 'expired', 'cancelled'];

/** The two request endpoints a batch line may call. */
export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/jobs'] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

/** `24h` (OpenAI's only value), or any `<n>h`, `<n>m`, `<n>s` up to 7 days. */
export const COMPLETION_WINDOW = /^([1-9][0-9]{0,6})([hms])$/;
/** Why 7 days: the default job retention; a batch must not outlive its own jobs. */
const MAX_COMPLETION_WINDOW_SECONDS = 7 * 24 * 3600;

/** Seconds of a completion window such as `24h`; `undefined` when it is not one. */
export function completionWindowSeconds(window: string): number | undefined {
  const match = COMPLETION_WINDOW.exec(window);
  if (!match) return undefined;
  const seconds = Number(match[1]) * { h: 3600, m: 60, s: 1 }[match[2] as 'h' | 'm' | 's'];
  return seconds <= MAX_COMPLETION_WINDOW_SECONDS ? seconds : undefined;
}

const CompletionWindow = z.string().refine((value) => completionWindowSeconds(value) !== undefined, {
  message: 'must be a duration such as 24h (at most 7 days)',
});
/** OpenAI's metadata: up to 16 string pairs. */
const Metadata = z
  .record(z.string().max(64), z.string().max(512))
  .refine((value) => Object.keys(value).length <= 16, { message: 'at most 16 keys' });
const Webhook = z.url({ protocol: /^https?$/ }).max(2048);

/** `POST /v1/batches` in OpenAI's shape: an uploaded JSONL file of request lines. */
export const CreateOpenAiBatchRequest = z.strictObject({
  input_file_id: z.string().regex(FILE_ID_PATTERN, 'must be a file id returned by POST /v1/files'),
  endpoint: z.enum(BATCH_ENDPOINTS),
  /** Defaults to `24h`. */
  completion_window: CompletionWindow.default('24h'),
  metadata: Metadata.nullish(),
  /** Called when the batch ends (see the webhooks section of the README). */
  webhook_url: Webhook.optional(),
  /** OpenAI's output-expiry option: accepted; output files follow the file retention of this service. */
  output_expires_after: z.object({ anchor: z.string(), seconds: z.number().int() }).optional(),
});
export type CreateOpenAiBatchRequest = z.output<typeof CreateOpenAiBatchRequest>;

const NativeCommon = {
  task: z.enum(TASK_NAMES),
  options: z.record(z.string(), z.unknown()).optional(),
  prompt: z.string().min(1).max(20_000).optional(),
  max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).optional(),
  json_schema: JsonSchemaObject.optional(),
  completion_window: CompletionWindow.default('24h'),
  metadata: Metadata.nullish(),
  webhook_url: Webhook.optional(),
};

/** Native shortcut: one `/v1/jobs` request per uploaded file, with the same task. */
export const CreateFileIdsBatchRequest = z.strictObject({
  /** Why 100,000: the batch size this service is built and tested for. */
  file_ids: z
    .array(z.string().regex(FILE_ID_PATTERN, 'must be a file id returned by POST /v1/files'))
    .min(1)
    .max(100_000),
  ...NativeCommon,
});
export type CreateFileIdsBatchRequest = z.output<typeof CreateFileIdsBatchRequest>;

/** Native shortcut: every regular file under a folder (inside the operator's allowed root). */
export const CreateFolderBatchRequest = z.strictObject({
  /** A path relative to `GEMBATCH_BATCH_FOLDER_ROOT`, or an absolute path inside it. */
  folder: z.string().min(1).max(4096),
  ...NativeCommon,
});
export type CreateFolderBatchRequest = z.output<typeof CreateFolderBatchRequest>;

/** Any body `POST /v1/batches` accepts (for documentation; `parseCreateBatchRequest` validates). */
export const CreateBatchRequest = z.union([
  CreateOpenAiBatchRequest,
  CreateFileIdsBatchRequest,
  CreateFolderBatchRequest,
]);
export type CreateBatchRequest = z.output<typeof CreateBatchRequest>;

/**
 * Validates a `POST /v1/batches` body against the one shape its keys choose (`input_file_id`,
 * `file_ids` or `folder`), so messages name the fields of that shape. Bad → `GB_ERR_BAD_REQUEST`.
 */
export function parseCreateBatchRequest(body: unknown): CreateBatchRequest {
  const value = (body ?? {}) as Record<string, unknown>;
  const schema =
    'file_ids' in value
      ? CreateFileIdsBatchRequest
      : 'folder' in value
        ? CreateFolderBatchRequest
        : CreateOpenAiBatchRequest;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new GembatchError(
    'GB_ERR_BAD_REQUEST',
    parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || 'body'}: ${issue.message}`).join('; '),
  );
}

/** One input line (JSONL): `{custom_id, method, url, body}`. */
export const BatchInputLine = z.strictObject({
  custom_id: z.string().min(1).max(512),
  method: z.literal('POST'),
  url: z.enum(BATCH_ENDPOINTS),
  body: z.record(z.string(), z.unknown()),
});
export type BatchInputLine = z.output<typeof BatchInputLine>;

/** The body of a `/v1/jobs` line: the same as `POST /v1/jobs`. */
export const JobsLineBody = CreateJobRequest;

const TextPart = z.object({ type: z.literal('text'), text: z.string() });
const ImagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string().min(1), detail: z.string().optional() }),
});
const AudioPart = z.object({
  type: z.literal('input_audio'),
  input_audio: z.object({ data: z.string().min(1), format: z.string().min(1).max(20) }),
});
const FilePart = z.object({
  type: z.literal('file'),
  file: z
    .object({
      file_id: z.string().optional(),
      file_data: z.string().optional(),
      filename: z.string().max(1024).optional(),
    })
    .refine((file) => (file.file_id === undefined) !== (file.file_data === undefined), {
      message: 'give exactly one of file_id or file_data',
    }),
});
export const ChatContentPart = z.discriminatedUnion('type', [TextPart, ImagePart, AudioPart, FilePart]);
export type ChatContentPart = z.output<typeof ChatContentPart>;

export const ChatMessage = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(ChatContentPart).min(1)]).nullable(),
  name: z.string().optional(),
});
export type ChatMessage = z.output<typeof ChatMessage>;

/**
 * The body of a `/v1/chat/completions` line. Fields gembatch does not act on (`n` > 1, tools,
 * logprobs, streaming) are refused rather than silently ignored; unknown extra fields are tolerated
 * as the OpenAI API tolerates them.
 */
export const ChatCompletionBody = z
  .object({
    model: z.string().min(1).max(256).optional(),
    messages: z.array(ChatMessage).min(1).max(1_000),
    max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullish(),
    max_completion_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    response_format: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('text') }),
        z.object({ type: z.literal('json_object') }),
        z.object({
          type: z.literal('json_schema'),
          json_schema: z.object({
            name: z.string().optional(),
            schema: JsonSchemaObject,
            strict: z.boolean().nullish(),
            description: z.string().optional(),
          }),
        }),
      ])
      .optional(),
    n: z.literal(1).optional(),
    stream: z.literal(false).optional(),
  })
  .loose()
  .superRefine((body, ctx) => {
    for (const field of ['tools', 'functions', 'tool_choice', 'logprobs', 'top_logprobs'] as const) {
      if (body[field] !== undefined && body[field] !== null && body[field] !== false)
        ctx.addIssue({ code: 'custom', path: [field], message: 'is not supported by gembatch' });
    }
  });
export type ChatCompletionBody = z.output<typeof ChatCompletionBody>;

/** One validation error of an input file, with its 1-based line number (OpenAI's `errors.data[]`). */
export interface BatchValidationError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** When a batch reached each later status, null until it has (seconds in `BatchObject`, milliseconds in the stored record). */
export interface BatchStatusTimes {
  in_progress_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
}

/** The batch object, as OpenAI returns it (timestamps are unix seconds). */
export interface BatchObject extends BatchStatusTimes {
  id: string;
  object: 'batch';
  endpoint: BatchEndpoint;
  errors: { object: 'list'; data: BatchValidationError[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  expires_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
  /** gembatch extension: where the batch's end is announced (null: nowhere). */
  webhook_url: string | null;
  /** Tokens of the finished requests so far (OpenAI's batch `usage`); identical requests that shared a job count once. */
  usage: { input_tokens: number; output_tokens: number; total_tokens: number };
}
