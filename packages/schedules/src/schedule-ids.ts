import { createHash, randomUUID } from 'node:crypto';

/** `sched_` + 32 hex chars. */
export function newScheduleId(): string {
  return `sched_${randomUUID().replaceAll('-', '')}`;
}

/** `run_` + 32 hex chars, for a run asked for now. */
export function newRunId(): string {
  return `run_${randomUUID().replaceAll('-', '')}`;
}

/**
 * The run id of a run job: its own id when the API named it (`run_…`), else derived from the
 * scheduler's job id, so every retry of one cron tick is the same run.
 */
export function runIdForJob(jobId: string): string {
  return jobId.startsWith('run_') ? jobId : `run_${createHash('sha256').update(jobId).digest('hex').slice(0, 32)}`;
}

export const SCHEDULE_ID_PATTERN = /^sched_[0-9a-f]{32}$/;
export const RUN_ID_PATTERN = /^run_[0-9a-f]{32}$/;
