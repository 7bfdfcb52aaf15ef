import { z } from 'zod';
import { TASK_NAMES } from '@gembatch/contracts';
import { WebhookSpec } from '@gembatch/webhooks';

/** The batch endpoints a schedule's requests can target (those `/v1/batches` accepts). */
export const SCHEDULE_ENDPOINTS = ['/v1/jobs', '/v1/chat/completions'] as const;
export type ScheduleEndpoint = (typeof SCHEDULE_ENDPOINTS)[number];

/** Placeholder replaced, in every string of a body template, by the id of the uploaded input file. */
export const FILE_ID_PLACEHOLDER = '{{file_id}}';

/** `POST /v1/schedules` body. Give `task` (+ `options`), or `endpoint` + `body` (a request template). */
export const CreateScheduleRequest = z
  .strictObject({
    /** Cron pattern, 5 fields (minute precision) or 6 (seconds first), as BullMQ's job schedulers read it. */
    cron: z.string().min(1).max(200),
    /** IANA time zone the pattern is read in. Defaults to `UTC`. */
    timezone: z.string().min(1).max(64).default('UTC'),
    /** Folder scanned on each run, relative to the schedule root or absolute under it. */
    source_folder: z.string().min(1).max(4096),
    /** Where results go (created when missing), under the same root. */
    output_folder: z.string().min(1).max(4096),
    /** A gembatch task run on each new file (`/v1/jobs` lines). */
    task: z.enum(TASK_NAMES).optional(),
    /** The task's options. */
    options: z.record(z.string(), z.unknown()).optional(),
    /** Batch endpoint of each request, with `body`. */
    endpoint: z.enum(SCHEDULE_ENDPOINTS).optional(),
    /** Request body template; every `{{file_id}}` in it becomes the input file's id. */
    body: z.record(z.string(), z.unknown()).optional(),
    /** Called when each run's batch ends (`batch.completed|failed|cancelled|expired`). */
    webhook: WebhookSpec.optional(),
    /** Copied onto each run's batch, beside `schedule_id` and `run_id` (a batch carries at most 16 keys). */
    metadata: z
      .record(z.string().max(64), z.string().max(512))
      .refine((value) => Object.keys(value).length <= 14, { message: 'at most 14 keys' })
      .optional(),
    /** Create it paused. Defaults to `false`. */
    paused: z.boolean().optional(),
  })
  .superRefine((body, ctx) => {
    if ((body.task === undefined) === (body.endpoint === undefined))
      ctx.addIssue({ code: 'custom', path: ['task'], message: 'give either task or endpoint with body' });
    if (body.endpoint !== undefined && body.body === undefined)
      ctx.addIssue({ code: 'custom', path: ['body'], message: 'endpoint needs a body template' });
    if (body.task !== undefined && body.body !== undefined)
      ctx.addIssue({ code: 'custom', path: ['body'], message: 'body goes with endpoint, not task' });
    if (body.body !== undefined && !JSON.stringify(body.body).includes(FILE_ID_PLACEHOLDER))
      ctx.addIssue({
        code: 'custom',
        path: ['body'],
        message: `the template must use ${FILE_ID_PLACEHOLDER} where the input file goes`,
      });
  });
export type CreateScheduleRequest = z.input<typeof CreateScheduleRequest>;

/** Where a run stands. `queued`: asked for (run now), not started; `skipped`: the previous run was still going when this one was due. */
export const RUN_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled', 'expired', 'skipped'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const ScheduleRunView = z.object({
  id: z.string(),
  object: z.literal('schedule.run'),
  schedule_id: z.string(),
  /** `cron` (the scheduler fired) or `manual` (run now). */
  trigger: z.enum(['cron', 'manual']),
  status: z.enum(RUN_STATUSES),
  /** Unix seconds. */
  started_at: z.number().int(),
  finished_at: z.number().int().nullable(),
  /** Files in the source folder when the run scanned it. */
  files_found: z.number().int(),
  /** Files the ledger had not seen (each processed once; the run's batch holds these). */
  files_new: z.number().int(),
  /** The batch this run submitted; null when there was nothing new (or it was skipped). */
  batch_id: z.string().nullable(),
  request_counts: z
    .object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int() })
    .nullable(),
  /** Why the run failed or was skipped. */
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type ScheduleRunView = z.infer<typeof ScheduleRunView>;

export const ScheduleView = z.object({
  id: z.string(),
  object: z.literal('schedule'),
  cron: z.string(),
  timezone: z.string(),
  source_folder: z.string(),
  output_folder: z.string(),
  task: z.string().nullable(),
  options: z.record(z.string(), z.unknown()).nullable(),
  endpoint: z.enum(SCHEDULE_ENDPOINTS),
  /** The request template (for a `task` schedule, the `/v1/jobs` body it builds). */
  body: z.record(z.string(), z.unknown()),
  webhook: z.object({ url: z.string() }).nullable(),
  metadata: z.record(z.string(), z.string()).nullable(),
  status: z.enum(['active', 'paused']),
  /** Unix seconds. */
  created_at: z.number().int(),
  /** When the scheduler fires next (unix seconds); null while paused. */
  next_run_at: z.number().int().nullable(),
  /** How many distinct file contents this schedule has processed (its ledger's size). */
  files_seen: z.number().int(),
  last_run: ScheduleRunView.nullable(),
});
export type ScheduleView = z.infer<typeof ScheduleView>;

/** What the store keeps of a schedule (the view is built from it). */
export interface ScheduleRecord {
  id: string;
  tenant: string;
  cron: string;
  timezone: string;
  /** As the client gave them. */
  source_folder: string;
  output_folder: string;
  task: string | null;
  options: Record<string, unknown> | null;
  endpoint: ScheduleEndpoint;
  body: Record<string, unknown>;
  webhook: { url: string } | null;
  metadata: Record<string, string> | null;
  paused: boolean;
  created_at: number;
}

/** The data of a run job (cron tick or run now). */
export const ScheduleRunJobData = z.object({
  schedule_id: z.string(),
  tenant: z.string(),
  trigger: z.enum(['cron', 'manual']),
});
export type ScheduleRunJobData = z.infer<typeof ScheduleRunJobData>;
