import type { Redis } from 'ioredis';
import { CONTROL_QUEUE_NAMES } from '@gembatch/contracts';
import { defineWorker, type GembatchWorker } from '@gembatch/queue';
import type { Logger } from '@gembatch/telemetry';
import { createScheduleRunner, type ScheduleRunnerOptions } from './run-schedule.ts';
import { ScheduleRunJobData } from './schedule-types.ts';

export interface ScheduleRunWorkerOptions extends ScheduleRunnerOptions {
  /** Blocking connection for the BullMQ worker; the caller closes it. */
  connection: Redis;
  prefix: string;
  logger: Logger;
  /** Runs at once (across schedules; one schedule never runs twice at once). Defaults to `4`. */
  concurrency?: number;
}

/**
 * Starts the consumer of the `schedule-runs` queue (cron ticks and run-now jobs). Run it in the
 * process that runs the batch feeder: a run creates a batch and waits for it.
 */
export function startScheduleRunWorker(options: ScheduleRunWorkerOptions): GembatchWorker {
  return defineWorker({
    queue: CONTROL_QUEUE_NAMES.scheduleRuns,
    prefix: options.prefix,
    connection: options.connection,
    // Why 4: a run mostly waits on its batch; a few at once cover several schedules due together.
    concurrency: options.concurrency ?? 4,
    logger: options.logger.child({ component: 'schedules' }),
    parse: (data) => ScheduleRunJobData.parse(data),
    processor: createScheduleRunner(options),
  });
}
