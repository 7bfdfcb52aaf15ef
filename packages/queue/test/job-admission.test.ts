import { describe, expect } from 'vitest';
import { GembatchError, newJobId, QUEUE_NAMES, redisKeys, type GenerateJobData } from '@gembatch/contracts';
import { closeAfterTest, openTestRedis, redisTest, type RedisTestContext } from '@gembatch/testing';
import {
  cancelJob,
  deleteJob,
  getJobView,
  JobAdmission,
  JobProducer,
  listJobs,
  type JobBlobCleaner,
} from '../src/index.ts';

function textJob(tenant: string): GenerateJobData {
  return {
    job_id: newJobId(),
    tenant,
    task: 'summarize',
    options: {},
    max_tokens: 8,
    submitted_at: Date.now(),
    input: { type: 'text', sha256: 'a'.repeat(64) },
  };
}

function setup(redis: RedisTestContext, window: number) {
  const producer = closeAfterTest(
    new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix }),
  );
  return { producer, admission: new JobAdmission({ producer, window }) };
}

/** Deletion's blob side, for jobs whose inline text nothing else holds: these tests look at the records. */
const noBlobs: JobBlobCleaner = {
  releaseJob: async () => false,
  inputsOf: async () => [],
  collectIfUnreferenced: async () => false,
  mediaOf: async () => [],
};

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error instanceof GembatchError ? error.code : String(error)),
  );
}

describe('JobAdmission', () => {
  redisTest(
    'admits while the window has room, then parks jobs in their tenant list; parked jobs read, list and cancel as queued jobs',
    async ({ redis }) => {
      const { producer, admission } = setup(redis, 2);
      const jobs = [textJob('acme'), textJob('acme'), textJob('acme'), textJob('acme')];
      const where = [];
      for (const job of jobs) where.push(await admission.submit(job, QUEUE_NAMES.generate, { priority: 7 }));
      expect(where).toEqual(['admitted', 'admitted', 'pending', 'pending']);
      expect(await producer.queues.generate.getJobCountByTypes('waiting', 'prioritized')).toBe(2);
      // A newcomer waits too while the window is full: no one jumps the line at submission.
      const other = textJob('globex');
      expect(await admission.submit(other, QUEUE_NAMES.generate)).toBe('pending');

      const parked = jobs[2] as GenerateJobData;
      const view = await getJobView(producer, parked.job_id, 'acme');
      expect(view).toMatchObject({ id: parked.job_id, status: 'queued', progress: 0 });
      expect(await codeOf(getJobView(producer, parked.job_id, 'globex')), "another tenant's pending job").toBe(
        'GB_ERR_NOT_FOUND',
      );
      expect((await listJobs(producer, 'acme')).map((v) => v.id).sort()).toEqual(jobs.map((j) => j.job_id).sort());
      expect(await admission.pendingCounts()).toEqual(
        new Map([
          ['acme', 2],
          ['globex', 1],
        ]),
      );

      const cancelled = await cancelJob(producer, parked.job_id, 'acme');
      expect(cancelled.status).toBe('cancelled');
      expect(await admission.pendingCounts()).toEqual(
        new Map([
          ['acme', 1],
          ['globex', 1],
        ]),
      );
      const deleted = jobs[3] as GenerateJobData;
      await deleteJob(producer, deleted.job_id, 'acme', noBlobs);
      expect(await codeOf(getJobView(producer, deleted.job_id, 'acme'))).toBe('GB_ERR_NOT_FOUND');
      expect(await admission.pendingCounts()).toEqual(new Map([['globex', 1]]));
      expect(
        await producer.redis.exists(redisKeys.pendingJobs(redis.prefix, 'acme')),
        'an emptied list leaves no key',
      ).toBe(0);

      // Two slots free up: the one pending job goes in with its priority, and the set says so.
      await admission.release([(jobs[0] as GenerateJobData).job_id, (jobs[1] as GenerateJobData).job_id]);
      expect(await admission.admitPending('globex', 5)).toEqual([other.job_id]);
      expect(await producer.queues.generate.getJobState(other.job_id)).toBe('waiting');
      expect((await getJobView(producer, other.job_id, 'globex')).status).toBe('queued');
      expect(await admission.pendingCounts()).toEqual(new Map());
      expect(await producer.redis.hlen(redisKeys.pendingJobData(redis.prefix))).toBe(0);
      expect(await admission.admittedIds()).toEqual([other.job_id]);
      // Priorities survive the wait.
      expect((await producer.queues.generate.getJob((jobs[0] as GenerateJobData).job_id))?.opts.priority).toBe(7);
    },
  );

  redisTest(
    'an admission a crash cut between claiming and adding is finished by the next feeder; a job cancelled meanwhile is not added',
    async ({ redis }) => {
      const { producer, admission } = setup(redis, 1);
      const blocker = textJob('acme');
      const waiting = [textJob('acme'), textJob('acme')];
      await admission.submit(blocker, QUEUE_NAMES.generate);
      for (const job of waiting) expect(await admission.submit(job, QUEUE_NAMES.generate)).toBe('pending');
      // The claim of a feeder that then died: ids moved into the admitted set, jobs never added.
      await producer.redis
        .multi()
        .del(redisKeys.pendingJobs(redis.prefix, 'acme'))
        .srem(redisKeys.pendingTenants(redis.prefix), 'acme')
        .zadd(redisKeys.admittedJobs(redis.prefix), ...waiting.flatMap((j) => [Date.now(), j.job_id]))
        .exec();
      expect((await getJobView(producer, (waiting[0] as GenerateJobData).job_id, 'acme')).status).toBe('queued');
      await cancelJob(producer, (waiting[1] as GenerateJobData).job_id, 'acme');

      expect(await admission.resumeAdmissions(await admission.admittedIds())).toBe(1);
      expect(await producer.queues.generate.getJobState((waiting[0] as GenerateJobData).job_id)).toBe('waiting');
      expect(await producer.queues.generate.getJobState((waiting[1] as GenerateJobData).job_id)).toBe('unknown');
      expect((await getJobView(producer, (waiting[1] as GenerateJobData).job_id, 'acme')).status).toBe('cancelled');
      expect(await producer.redis.hlen(redisKeys.pendingJobData(redis.prefix))).toBe(0);
      expect(await admission.resumeAdmissions(await admission.admittedIds()), 'a second resume adds nothing').toBe(0);
    },
  );
});
