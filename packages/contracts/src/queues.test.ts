import { describe, expect, it } from 'vitest';
import { CONTROL_QUEUE_NAMES, QUEUE_NAMES, bullmqKeys } from './queues.ts';

describe('bullmqKeys', () => {
  it('names a job as BullMQ does and reads it back', () => {
    const key = bullmqKeys.job('gb', QUEUE_NAMES.generateMedia, 'job_1:chunk:3');
    expect(key).toBe('gb:generate-media:job_1:chunk:3');
    expect(bullmqKeys.parseJob('gb', key, [QUEUE_NAMES.generate, QUEUE_NAMES.generateMedia])).toEqual({
      queue: 'generate-media',
      id: 'job_1:chunk:3',
    });
  });

  it('matches whole queue names only, and only under the prefix', () => {
    expect(bullmqKeys.parseJob('gb', 'gb:generate-media:x', [QUEUE_NAMES.generate])).toBeUndefined();
    expect(bullmqKeys.parseJob('gb', 'other:generate:x', [QUEUE_NAMES.generate])).toBeUndefined();
    expect(
      bullmqKeys.parseJob(
        '{gb}',
        `${bullmqKeys.queuePrefix('{gb}', CONTROL_QUEUE_NAMES.scheduleRuns)}repeat:s:1:logs`,
        [CONTROL_QUEUE_NAMES.scheduleRuns],
      )?.id,
    ).toBe('repeat:s:1:logs');
  });
});
