import { z } from 'zod';
import {
  ERROR_CODES,
  FILE_PURPOSES,
  JOB_STATUSES,
  TASK_NAMES,
  Timings,
  Usage,
  type ErrorCode,
  type JobView,
} from '@gembatch/contracts';

/**
 * Zod schemas of the API's responses and path/query parameters. Responses are documented
 * (OpenAPI) from these; the request body schema is contracts' `CreateJobRequest`.
 */

export const ErrorResponse = z.object({
  error: z.object({ code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]), message: z.string() }),
});

export const IdParams = z.object({ id: z.string().min(1).max(200) });

/** OpenAI's `FileObject` (the SDKs parse it), plus `sha256`. */
export const FileObject = z.object({
  id: z.string(),
  object: z.literal('file'),
  bytes: z.number().int().nonnegative(),
  created_at: z.number().int().describe('Unix seconds'),
  filename: z.string(),
  purpose: z.enum(FILE_PURPOSES),
  status: z.literal('processed'),
  expires_at: z
    .number()
    .int()
    .optional()
    .describe('Unix seconds; the file is deleted then (GEMBATCH_FILE_RETENTION_SECONDS)'),
  sha256: z.string(),
});
export type FileObject = z.infer<typeof FileObject>;

export const FileListQuery = z.strictObject({
  /** A file id: list the files after it (in `order`). */
  after: z.string().max(200).optional(),
  /** Files per page (1..10000). Defaults to 10000. */
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  /** By creation time. Defaults to `desc`. */
  order: z.enum(['asc', 'desc']).optional(),
  purpose: z.enum(FILE_PURPOSES).optional(),
});

export const FileList = z.object({
  object: z.literal('list'),
  data: z.array(FileObject),
  has_more: z.boolean(),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
});

export const FileDeleted = z.object({ id: z.string(), object: z.literal('file'), deleted: z.literal(true) });

export const JobViewResponse = z.object({
  id: z.string(),
  object: z.literal('job'),
  task: z.enum(TASK_NAMES),
  status: z.enum(JOB_STATUSES),
  progress: z.number().min(0).max(100),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  usage: Usage.nullable(),
  timings: Timings.nullable(),
  finish_reason: z.string().nullable(),
  error: ErrorResponse.shape.error.nullable(),
  input: z.object({ file_id: z.string().optional(), media_type: z.string().optional() }),
  metadata: z.record(z.string(), z.string()).optional(),
}) satisfies z.ZodType<JobView>;

export const JobDeleted = z.object({ id: z.string(), object: z.literal('job'), deleted: z.literal(true) });

export const JobListQuery = z.strictObject({
  /** Only jobs in this status. */
  status: z.enum(JOB_STATUSES).optional(),
  /** Newest jobs returned (1..100). Defaults to 20. */
  limit: z.coerce.number().int().min(1).max(100).optional(),
});

export const JobList = z.object({ object: z.literal('list'), data: z.array(JobViewResponse) });

export const JobResultResponse = z
  .object({
    job_id: z.string(),
    task: z.enum(TASK_NAMES),
    output: z.unknown(),
    usage: Usage,
    timings: Timings,
    finish_reason: z.string(),
    model: z.string(),
    node: z.string(),
    chunks: z.number().int(),
  })
  .loose();

export const HealthResponse = z.object({ status: z.literal('ok') });
export const ReadinessResponse = z.object({
  status: z.enum(['ready', 'unavailable']),
  checks: z.object({ redis: z.enum(['ok', 'failed']), workers: z.number().int().nonnegative().nullable() }),
  error: ErrorResponse.shape.error.optional(),
});
