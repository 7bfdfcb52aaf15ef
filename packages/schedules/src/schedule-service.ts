import { Queue, type JobsOptions } from 'bullmq';
import cronParser from 'cron-parser';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { bullmqKeys, CONTROL_QUEUE_NAMES, GembatchError, parseTaskOptions, redisKeys } from '@gembatch/contracts';
import { closeSharedQueue } from '@gembatch/queue';
import type { WebhookAllowlist } from '@gembatch/webhooks';
import type { FolderRoot } from './folder-root.ts';
import { newRunId, newScheduleId } from './schedule-ids.ts';
import { ScheduleStore } from './schedule-store.ts';
import {
  FILE_ID_PLACEHOLDER,
  type CreateScheduleRequest,
  type ScheduleRecord,
  type ScheduleRunJobData,
  type ScheduleRunView,
  type ScheduleView,
} from './schedule-types.ts';

/**
 * Run jobs retry: a run resumes where it was (same run id, same batch) after a worker restart or a
 * Redis hiccup; every retry is harmless. Why 10 tries from 5 s: covers a few minutes of outage.
 */
export const SCHEDULE_RUN_JOB_OPTIONS = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 5_000 },
  // A week of run jobs for operators; the run records themselves live in the schedule store.
  removeOnComplete: { age: 7 * 24 * 60 * 60 },
  removeOnFail: { age: 7 * 24 * 60 * 60 },
} as const satisfies JobsOptions;

/** Job name of cron ticks and run-now jobs. */
const RUN_JOB_NAME = 'schedule-run';

export interface ScheduleServiceOptions {
  /** Request/response connection; the caller closes it. */
  redis: Redis;
  prefix: string;
  /** The operator's schedule root; undefined: schedules are off and creation is refused. */
  root: FolderRoot | undefined;
  allowlist: WebhookAllowlist;
}

/**
 * What the API does with schedules: create (checked: cron, time zone, folders under the root,
 * task options, webhook allowlist) as a BullMQ job scheduler, read, list, pause (the scheduler is
 * removed, the record kept), resume, run now, list runs, delete. Runs themselves happen in the
 * schedule-run consumer (`startScheduleRunWorker`).
 */
export class ScheduleService {
  readonly store: ScheduleStore;
  readonly #queue: Queue;
  readonly #options: ScheduleServiceOptions;
  #closing: Promise<void> | undefined;

  constructor(options: ScheduleServiceOptions) {
    this.#options = options;
    this.store = new ScheduleStore(options.redis, options.prefix);
    this.#queue = new Queue(CONTROL_QUEUE_NAMES.scheduleRuns, { connection: options.redis, prefix: options.prefix });
  }

  async create(tenant: string, request: z.output<typeof CreateScheduleRequest>): Promise<ScheduleView> {
    const root = this.#options.root;
    if (!root)
      throw new GembatchError(
        'GB_ERR_FOLDER_NOT_ALLOWED',
        'schedules are not enabled on this server (GEMBATCH_SCHEDULE_ROOT is unset)',
      );
    assertTimezone(request.timezone);
    assertCron(request.cron, request.timezone);
    if (request.task !== undefined) {
      const parsed = parseTaskOptions(request.task, { options: request.options });
      if (!parsed.success)
        throw new GembatchError(
          'GB_ERR_BAD_REQUEST',
          `options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
        );
    }
    if (request.webhook) this.#options.allowlist.assertAllowed(request.webhook.url);
    await root.existingFolder(request.source_folder, 'source_folder');
    await root.folderToWrite(request.output_folder, 'output_folder');
    const record: ScheduleRecord = {
      id: newScheduleId(),
      tenant,
      cron: request.cron,
      timezone: request.timezone,
      source_folder: request.source_folder,
      output_folder: request.output_folder,
      task: request.task ?? null,
      options: request.options ?? null,
      endpoint: request.endpoint ?? '/v1/jobs',
      body: request.body ?? {
        file_id: FILE_ID_PLACEHOLDER,
        task: request.task,
        ...(request.options ? { options: request.options } : {}),
      },
      webhook: request.webhook ?? null,
      metadata: request.metadata ?? null,
      paused: request.paused ?? false,
      created_at: Math.floor(Date.now() / 1000),
    };
    await this.store.put(record);
    if (!record.paused) await this.#upsertScheduler(record);
    return this.view(record);
  }

  /** The schedule or 404. */
  async get(tenant: string, id: string): Promise<ScheduleRecord> {
    const record = await this.store.get(tenant, id);
    if (!record) throw new GembatchError('GB_ERR_NOT_FOUND', `no schedule ${id}`);
    return record;
  }

  async list(tenant: string, limit: number): Promise<ScheduleView[]> {
    const views: ScheduleView[] = [];
    for (const id of await this.store.ids(tenant, limit)) {
      const record = await this.store.get(tenant, id);
      if (record) views.push(await this.view(record));
    }
    return views;
  }

  /** Stops future cron runs (a run going on finishes). Idempotent. */
  async pause(tenant: string, id: string): Promise<ScheduleView> {
    const record = await this.get(tenant, id);
    await this.#queue.removeJobScheduler(record.id);
    const paused = { ...record, paused: true };
    await this.store.put(paused);
    return this.view(paused);
  }

  /** Restarts cron runs. Idempotent. */
  async resume(tenant: string, id: string): Promise<ScheduleView> {
    const record = await this.get(tenant, id);
    const active = { ...record, paused: false };
    await this.store.put(active);
    await this.#upsertScheduler(active);
    return this.view(active);
  }

  /** Queues a run now (also while paused). It is skipped if a run of this schedule is still going when it starts. */
  async runNow(tenant: string, id: string): Promise<ScheduleRunView> {
    const record = await this.get(tenant, id);
    const run: ScheduleRunView = {
      id: newRunId(),
      object: 'schedule.run',
      schedule_id: record.id,
      trigger: 'manual',
      status: 'queued',
      started_at: Math.floor(Date.now() / 1000),
      finished_at: null,
      files_found: 0,
      files_new: 0,
      batch_id: null,
      request_counts: null,
      error: null,
    };
    await this.store.putRun(run);
    const data: ScheduleRunJobData = { schedule_id: record.id, tenant, trigger: 'manual' };
    await this.#queue.add(RUN_JOB_NAME, data, { ...SCHEDULE_RUN_JOB_OPTIONS, jobId: run.id });
    return run;
  }

  async runs(tenant: string, id: string, limit: number): Promise<ScheduleRunView[]> {
    const record = await this.get(tenant, id);
    return this.store.runs(record.id, limit);
  }

  /** Removes the scheduler, the record, its runs and its ledger. */
  async delete(tenant: string, id: string): Promise<void> {
    const record = await this.get(tenant, id);
    await this.#queue.removeJobScheduler(record.id);
    await this.store.delete(record);
  }

  /**
   * Deletes every schedule of a tenant (the tenant purge): its BullMQ job scheduler (no more cron
   * runs), its queued and finished run jobs, its record, runs, ledger, hash cache and marker, and
   * the tenant's schedule index. Batches its runs created are the batch purge's. Idempotent.
   * Resolves `{schedules}`: how many schedule records were deleted.
   */
  async purgeTenant(tenant: string): Promise<{ schedules: number }> {
    const { redis, prefix } = this.#options;
    const index = redisKeys.tenantSchedules(prefix, tenant);
    let schedules = 0;
    for (const id of await redis.zrange(index, 0, -1)) {
      await this.#queue.removeJobScheduler(id);
      const runIds = await redis.zrange(redisKeys.scheduleRuns(prefix, id), 0, -1);
      // Cron run jobs are named `repeat:<scheduler id>:<millis>` by BullMQ; "run now" jobs by their run id.
      const jobIds = new Set(runIds);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(
          cursor,
          'MATCH',
          `${bullmqKeys.queuePrefix(prefix, CONTROL_QUEUE_NAMES.scheduleRuns)}repeat:${id}:*`,
          'COUNT',
          500,
        );
        cursor = next;
        // A job's keys carry suffixes (`:logs`, `:lock`): its id is the first three parts.
        for (const key of keys) {
          const job = bullmqKeys.parseJob(prefix, key, [CONTROL_QUEUE_NAMES.scheduleRuns]);
          if (job) jobIds.add(job.id.split(':').slice(0, 3).join(':'));
        }
      } while (cursor !== '0');
      // A run job a worker holds right now cannot be removed; its lock expires and the run finds no schedule.
      for (const jobId of jobIds) await this.#queue.remove(jobId).catch(() => 0);
      const record = await this.store.get(tenant, id);
      if (record) {
        await this.store.delete(record);
        schedules += 1;
      }
    }
    await redis.del(index);
    return { schedules };
  }

  async view(record: ScheduleRecord): Promise<ScheduleView> {
    const [scheduler, filesSeen, lastRuns] = await Promise.all([
      record.paused ? undefined : this.#queue.getJobScheduler(record.id),
      this.store.ledgerSize(record.id),
      this.store.runs(record.id, 1),
    ]);
    return {
      id: record.id,
      object: 'schedule',
      cron: record.cron,
      timezone: record.timezone,
      source_folder: record.source_folder,
      output_folder: record.output_folder,
      task: record.task,
      options: record.options,
      endpoint: record.endpoint,
      body: record.body,
      webhook: record.webhook,
      metadata: record.metadata,
      status: record.paused ? 'paused' : 'active',
      created_at: record.created_at,
      next_run_at: scheduler?.next ? Math.floor(scheduler.next / 1000) : null,
      files_seen: filesSeen,
      last_run: lastRuns[0] ?? null,
    };
  }

  /** Closes the queue (not the connection). Idempotent. */
  close(): Promise<void> {
    // The queue shares the caller's connection: let its start-up finish before the caller quits it.
    this.#closing ??= closeSharedQueue(this.#queue, this.#options.redis);
    return this.#closing;
  }

  async #upsertScheduler(record: ScheduleRecord): Promise<void> {
    const data: ScheduleRunJobData = { schedule_id: record.id, tenant: record.tenant, trigger: 'cron' };
    await this.#queue.upsertJobScheduler(
      record.id,
      { pattern: record.cron, tz: record.timezone },
      { name: RUN_JOB_NAME, data, opts: SCHEDULE_RUN_JOB_OPTIONS },
    );
  }
}

function assertTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new GembatchError('GB_ERR_BAD_REQUEST', 'timezone: not an IANA time zone (e.g. Europe/Paris, UTC)');
  }
}

/** The pattern must parse the way BullMQ will read it (cron-parser, the same version). */
function assertCron(cron: string, timezone: string): void {
  const fields = cron.trim().split(/\s+/).length;
  // Why 5 or 6: minute precision, or seconds first; cron-parser also takes 7 (years), which BullMQ's docs do not promise.
  if (fields !== 5 && fields !== 6)
    throw new GembatchError('GB_ERR_BAD_REQUEST', 'cron: expected 5 fields (m h dom mon dow) or 6 (seconds first)');
  try {
    cronParser.parseExpression(cron, { tz: timezone }).next();
  } catch (error) {
    throw new GembatchError(
      'GB_ERR_BAD_REQUEST',
      `cron: ${error instanceof Error ? error.message.slice(0, 200) : 'invalid pattern'}`,
    );
  }
}
