import { z } from 'zod';
import { INPUT_KINDS, JsonSchemaObject, TASKS, TASK_NAMES, type TaskName } from './tasks/index.ts';
import { FILE_ID_PATTERN, SHA256_PATTERN } from './ids.ts';
import type { ErrorBody } from './errors.ts';

/** Tenant of every record; the single-tenant default when API keys are not configured. */
export const DEFAULT_TENANT = 'default';
export const TenantId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'tenant ids are lowercase letters, digits, - and _');

/** Upper bound on `max_tokens` a caller may ask for (the engine also caps it by the context). */
export const MAX_TOKENS_LIMIT = 32_768;
/** Inline `text` inputs above this are refused; upload them as files instead. */
export const MAX_INLINE_TEXT_CHARS = 1_000_000;

/** `POST /v1/jobs` body. Exactly one of `file_id` and `text`. */
export const CreateJobRequest = z
  .strictObject({
    file_id: z.string().regex(FILE_ID_PATTERN, 'must be a file id returned by POST /v1/files').optional(),
    text: z.string().min(1, 'must not be empty').max(MAX_INLINE_TEXT_CHARS).optional(),
    task: z.enum(TASK_NAMES),
    /** Task options (see each task's schema). */
    options: z.record(z.string(), z.unknown()).optional(),
    /** Shorthand for the task's `promptOption` (`options.instruction` of the `prompt` task). */
    prompt: z.string().min(1).max(20_000).optional(),
    /** Generated-token cap. Defaults to the task's default. */
    max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).optional(),
    /** 1 (highest) .. 1000 (lowest); unset jobs run before any prioritized job, FIFO. */
    priority: z.number().int().min(1).max(1000).optional(),
    /** A JSON Schema the output must satisfy (any task with text output). */
    json_schema: JsonSchemaObject.optional(),
    /** Password for an encrypted PDF. Never logged. */
    password: z.string().min(1).max(1024).optional(),
    /** Caller's own reference, echoed back (e.g. a batch custom_id). */
    metadata: z.record(z.string(), z.string().max(512)).optional(),
  })
  .superRefine((body, ctx) => {
    if ((body.file_id === undefined) === (body.text === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['file_id'], message: 'give exactly one of file_id or text' });
    }
    const promptOption = TASKS[body.task].promptOption;
    if (promptOption !== undefined && body.prompt === undefined && body.options?.[promptOption] === undefined) {
      ctx.addIssue({ code: 'custom', path: ['prompt'], message: `the ${body.task} task needs a prompt` });
    }
  });
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;

/**
 * Parses the task options of a request (merging the `prompt` shorthand into the task's
 * `promptOption`), so invalid options fail at submission. Issue paths are relative to `options`.
 */
export function parseTaskOptions(task: TaskName, request: Pick<CreateJobRequest, 'options' | 'prompt'>) {
  const promptOption = TASKS[task].promptOption;
  const raw =
    promptOption !== undefined && request.prompt !== undefined
      ? { ...request.options, [promptOption]: request.prompt }
      : (request.options ?? {});
  return TASKS[task].options.safeParse(raw);
}

/** A problem with a request's task part, its path relative to the request body. */
export interface TaskRequestIssue {
  path: PropertyKey[];
  message: string;
}

/** A request's task part as its definition reads it: parsed options and the `max_tokens` to run with. */
export type TaskRequestCheck =
  | { success: true; options: Record<string, unknown>; maxTokens: number }
  | { success: false; issues: TaskRequestIssue[] };

/**
 * Checks the task part of a `POST /v1/jobs` body (or a batch line or chat request mapped to one)
 * against its task's definition: the options (with the `prompt` shorthand; a bad instruction given
 * that way is the body's `prompt`), whether the task takes text when the input is inline text, and
 * the task's default `max_tokens`. The one check the API and batches share.
 */
export function checkTaskRequest(
  body: Pick<CreateJobRequest, 'task' | 'options' | 'prompt' | 'text' | 'max_tokens'>,
): TaskRequestCheck {
  const task = TASKS[body.task];
  const parsed = parseTaskOptions(body.task, body);
  if (!parsed.success) {
    const viaPrompt = task.promptOption !== undefined && body.prompt !== undefined;
    const issues = parsed.error.issues.map(({ path, message }) => {
      const [head, ...rest] = path;
      return { path: viaPrompt && head === task.promptOption ? ['prompt', ...rest] : ['options', ...path], message };
    });
    return { success: false, issues };
  }
  if (body.text !== undefined && !task.accepts.includes('text')) {
    return {
      success: false,
      issues: [
        {
          path: ['task'],
          message: `the ${body.task} task takes ${task.accepts.join(' or ')} input, not text; upload a file and pass its file_id`,
        },
      ],
    };
  }
  return { success: true, options: parsed.data, maxTokens: body.max_tokens ?? task.defaultMaxTokens };
}

/**
 * What a file is for, with OpenAI's Files API values (so its SDKs send theirs unchanged). gembatch
 * treats them alike except `batch` (a JSONL batch input) and `batch_output` (written by gembatch).
 */
export const FILE_PURPOSES = [
  'assistants',
  'assistants_output',
  'batch',
  'batch_output',
  'fine-tune',
  'fine-tune-results',
  'vision',
  'user_data',
  'evals',
] as const;
export type FilePurpose = (typeof FILE_PURPOSES)[number];
/** Purpose of an upload that names none (gembatch's own CLI before the Files API). */
export const DEFAULT_FILE_PURPOSE: FilePurpose = 'user_data';

/** Unix seconds; records written before the Files API held ISO 8601 strings, read back as seconds. */
const UnixSeconds = z.preprocess((value) => {
  if (typeof value === 'string' && !/^\d+$/.test(value)) return Math.floor(Date.parse(value) / 1000);
  return typeof value === 'string' ? Number(value) : value;
}, z.number().int().nonnegative());

/** A file as uploaded (per tenant); its bytes live in the blob store under `sha256`. */
export const FileRecord = z.object({
  id: z.string().regex(FILE_ID_PATTERN),
  tenant: TenantId,
  sha256: z.string().regex(SHA256_PATTERN),
  bytes: z.coerce.number().int().nonnegative(),
  filename: z.string().max(1024),
  /** What the client claimed; never trusted for processing (content is sniffed). */
  declared_type: z.string().max(255).optional(),
  purpose: z.enum(FILE_PURPOSES).default(DEFAULT_FILE_PURPOSE),
  /** Unix seconds (OpenAI's `created_at`). */
  created_at: UnixSeconds,
  /** Unix seconds after which the record and (once unreferenced) its blob are deleted. Unset: kept until deleted. */
  expires_at: UnixSeconds.optional(),
});
export type FileRecord = z.infer<typeof FileRecord>;

/** What every queued job carries, in every queue: who, what, and how. */
export const JobSpec = z.object({
  job_id: z.string(),
  tenant: TenantId,
  task: z.enum(TASK_NAMES),
  /** Parsed task options. */
  options: z.record(z.string(), z.unknown()),
  max_tokens: z.number().int().positive(),
  /** Sampling temperature (batch chat requests). Unset: the engine's default, greedy. */
  temperature: z.number().min(0).max(2).optional(),
  json_schema: z.record(z.string(), z.unknown()).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  /** ms since epoch when the API accepted the job. */
  submitted_at: z.number(),
});
export type JobSpec = z.infer<typeof JobSpec>;

/**
 * The `JobSpec` part of a queue payload (or of fields gathered for a new job), leaving out unset
 * optional fields; for handing a job on to its next queue under the same id.
 */
export function jobSpecOf(data: JobSpec): JobSpec {
  return {
    job_id: data.job_id,
    tenant: data.tenant,
    task: data.task,
    options: data.options,
    max_tokens: data.max_tokens,
    ...(data.temperature !== undefined ? { temperature: data.temperature } : {}),
    ...(data.json_schema ? { json_schema: data.json_schema } : {}),
    ...(data.metadata ? { metadata: data.metadata } : {}),
    submitted_at: data.submitted_at,
  };
}

/** Payload of the `extract` queue: a file to turn into model input. */
export const ExtractJobData = JobSpec.extend({
  file: z.object({
    id: z.string(),
    sha256: z.string().regex(SHA256_PATTERN),
    bytes: z.number().int().nonnegative(),
    filename: z.string(),
  }),
  password: z.string().optional(),
  priority: z.number().int().optional(),
});
export type ExtractJobData = z.infer<typeof ExtractJobData>;

/** One piece of media handed to a multimodal engine (a normalised image or a ≤30 s WAV segment). */
export const MediaPart = z.object({
  kind: z.enum(['image', 'audio']),
  /** Blob-store sha256 of the normalised bytes (JPEG/PNG, or 16 kHz mono WAV). */
  sha256: z.string().regex(SHA256_PATTERN),
  mime: z.string(),
  /** Where it came from: page index for rendered pages, segment start for audio. */
  page: z.number().int().nonnegative().optional(),
  start_s: z.number().nonnegative().optional(),
  end_s: z.number().nonnegative().optional(),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
});
export type MediaPart = z.infer<typeof MediaPart>;

/** The extract step's output, stored as JSON in the blob store. Holds document text: never log it. */
export const ExtractedDocument = z.object({
  /** What the content turned out to be, by sniffing (e.g. `application/pdf`). */
  media_type: z.string(),
  /** Extracted or OCRed text, in reading order (may be empty for pure media). */
  text: z.string(),
  /** Per-page detail for paged documents. */
  pages: z
    .array(
      z.object({
        index: z.number().int().nonnegative(),
        chars: z.number().int().nonnegative(),
        source: z.enum(['text', 'ocr', 'image', 'error']),
      }),
    )
    .default([]),
  media: z.array(MediaPart).default([]),
  /** Input kinds present, so the router knows whether a media-capable node is needed. */
  kinds: z.array(z.enum(INPUT_KINDS)),
  meta: z.record(z.string(), z.unknown()).default({}),
  /** Content-free warnings (e.g. "page 7 could not be parsed"). */
  warnings: z.array(z.string()).default([]),
});
export type ExtractedDocument = z.infer<typeof ExtractedDocument>;

/** Payload of the `generate` and `generate-media` queues. */
export const GenerateJobData = JobSpec.extend({
  /** Blob sha256 of the UTF-8 text or of an `ExtractedDocument` JSON. */
  input: z.discriminatedUnion('type', [
    z.object({ type: z.literal('text'), sha256: z.string().regex(SHA256_PATTERN) }),
    z.object({
      type: z.literal('document'),
      sha256: z.string().regex(SHA256_PATTERN),
      file_id: z.string(),
      media_type: z.string(),
    }),
  ]),
  /** ms the extract step took (file inputs). */
  extract_ms: z.number().nonnegative().optional(),
  /**
   * Set on chunk children of a long input: which slice of the parent's input this is — a piece of
   * its text, or a run of its media parts (indexes into the extracted document's `media`).
   */
  chunk: z
    .object({
      index: z.number().int().nonnegative(),
      count: z.number().int().positive(),
      text_sha256: z.string().regex(SHA256_PATTERN).optional(),
      media_indexes: z.array(z.number().int().nonnegative()).min(1).optional(),
    })
    .refine((chunk) => (chunk.text_sha256 === undefined) !== (chunk.media_indexes === undefined), {
      message: 'a chunk is either text or media',
    })
    .optional(),
});
export type GenerateJobData = z.infer<typeof GenerateJobData>;

export const Usage = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  generated_tokens: z.number().int().nonnegative(),
  /** Tokens spent on images and audio (part of prompt_tokens). */
  media_tokens: z.number().int().nonnegative().default(0),
});
export type Usage = z.infer<typeof Usage>;

/** Engine timings of a job, in milliseconds. */
export const Timings = z.object({
  queue_wait_ms: z.number().nonnegative(),
  extract_ms: z.number().nonnegative().default(0),
  time_to_first_token_ms: z.number().nonnegative().nullable(),
  /** Mean time between generated tokens after the first. */
  inter_token_ms: z.number().nonnegative().nullable(),
  generate_ms: z.number().nonnegative(),
  total_ms: z.number().nonnegative(),
});
export type Timings = z.infer<typeof Timings>;

export const FINISH_REASONS = ['stop', 'length'] as const;

/** Return value of a completed generate job (kept in Redis); the output itself is in the blob store. */
export const GenerateJobResult = z.object({
  result_sha256: z.string().regex(SHA256_PATTERN),
  usage: Usage,
  timings: Timings,
  finish_reason: z.enum(FINISH_REASONS),
  node: z.string(),
  model: z.string(),
  chunks: z.number().int().positive().default(1),
});
export type GenerateJobResult = z.infer<typeof GenerateJobResult>;

/** The stored result document (`GET /v1/jobs/:id/result`). */
export interface JobResultDocument {
  job_id: string;
  task: TaskName;
  output: unknown;
  usage: Usage;
  timings: Timings;
  finish_reason: (typeof FINISH_REASONS)[number];
  model: string;
  node: string;
  chunks: number;
  /** Which pages were OCRed or seen as images, and other content-free notes from extraction. */
  extraction?: { media_type: string; pages_ocr: number[]; pages_image: number[]; warnings: string[] };
  metadata?: Record<string, string>;
}

/** queued: waiting in any queue; extracting: the file is being read; running: generating (or its chunks are). */
export const JOB_STATUSES = ['queued', 'extracting', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** `GET /v1/jobs/:id`. */
export interface JobView {
  id: string;
  object: 'job';
  task: TaskName;
  status: JobStatus;
  /** 0..100. */
  progress: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  usage: Usage | null;
  timings: Timings | null;
  finish_reason: string | null;
  error: ErrorBody | null;
  input: { file_id?: string; media_type?: string };
  metadata?: Record<string, string>;
}
