import { createHash } from 'node:crypto';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { redisKeys } from '@gembatch/contracts';
import { FileStore } from '@gembatch/storage';
import { createLogger } from '@gembatch/telemetry';
import { redisTest } from '@gembatch/testing';
import { AuditLog } from '../src/audit-log.ts';
import { RetentionSweeper, STALE_PARTIAL_MS } from '../src/retention-sweeper.ts';
import { startApi, upload, type Harness } from './api-harness.ts';

const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex');
const DAY_MS = 24 * 60 * 60 * 1000;

/** A sweeper over the harness's Redis, blobs and queues, as the app builds it. */
function sweeperFor(harness: Harness, prefix: string, fileRetentionSeconds: number, jobRetentionSeconds = 604_800) {
  const files = new FileStore({
    redis: harness.redis,
    prefix,
    blobs: harness.blobStore,
    retentionSeconds: fileRetentionSeconds,
  });
  const audit = new AuditLog(harness.redis, prefix, { maxEntries: 1000, retentionSeconds: 90 * 24 * 60 * 60 });
  const sweeper = new RetentionSweeper({
    redis: harness.redis,
    prefix,
    files,
    blobs: harness.blobStore,
    queues: harness.producer,
    audit,
    log: createLogger({ service: 'api', level: 'silent' }),
    jobRetentionSeconds,
  });
  return { sweeper, audit };
}

/** A `.part` file as a killed upload leaves it, last written `ageMs` ago. */
async function partial(root: string, name: string, ageMs: number): Promise<void> {
  await mkdir(join(root, '.tmp'), { recursive: true });
  const path = join(root, '.tmp', name);
  await writeFile(path, 'half an upload');
  const at = (Date.now() - ageMs) / 1000;
  await utimes(path, at, at);
}

describe('retention sweep', () => {
  redisTest('deletes files past their retention (record, then bytes by reference) and audits it', async ({ redis }) => {
    const harness = await startApi(redis, { GEMBATCH_FILE_RETENTION_SECONDS: '60' });
    const { sweeper, audit } = sweeperFor(harness, redis.prefix, 60);
    const file = await upload(harness.app, 'kept for a minute', 'minute.txt');
    expect((await sweeper.sweep()).expiredFiles).toBe(0);
    expect((await harness.app.inject({ method: 'GET', url: `/v1/files/${file.id}` })).statusCode).toBe(200);

    const report = await sweeper.sweep(Date.now() + 61_000);
    expect(report.expiredFiles).toBe(1);
    expect((await harness.app.inject({ method: 'GET', url: `/v1/files/${file.id}` })).statusCode).toBe(404);
    expect(await harness.blobStore.has(file.sha256)).toBe(false);
    expect(await harness.redis.zcard(redisKeys.fileExpiry(redis.prefix))).toBe(0);
    expect((await audit.query({ action: 'file.expire' })).data).toMatchObject([
      { resource: file.id, actor: 'system', tenant: 'default' },
    ]);
  });

  redisTest("releases a job's inline text once the job has expired, not before", async ({ redis }) => {
    const harness = await startApi(redis);
    const { sweeper } = sweeperFor(harness, redis.prefix, 0);
    const gone = (
      await harness.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { text: 'text of an expired job', task: 'summarize' },
      })
    ).json();
    const alive = (
      await harness.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { text: 'text of a live job', task: 'summarize' },
      })
    ).json();
    // What BullMQ's removeOnComplete age does to a finished job.
    await (await harness.producer.queues.generate.getJob(gone.id))?.remove();

    const report = await sweeper.sweep(Date.now() + 604_801_000);
    expect(report.releasedJobTexts).toBe(1);
    expect(await harness.blobStore.has(sha256Of('text of an expired job'))).toBe(false);
    expect(await harness.blobStore.has(sha256Of('text of a live job'))).toBe(true);
    // The live job's reference is looked at again later.
    expect(
      await harness.redis.zscore(redisKeys.jobBlobRefs(redis.prefix), `${alive.id}:${sha256Of('text of a live job')}`),
    ).not.toBeNull();
  });

  redisTest(
    'collects unreferenced derived blobs past the job retention, keeps referenced ones, and sweeps dead .part files',
    async ({ redis }) => {
      const harness = await startApi(redis);
      const { sweeper } = sweeperFor(harness, redis.prefix, 0, 60);
      const derived = await harness.blobStore.put(Buffer.from('an extracted document nobody references'));
      const file = await upload(harness.app, 'an uploaded file', 'kept.txt');
      await partial(harness.blobStore.root, 'dead.part', STALE_PARTIAL_MS + 60_000);
      await partial(harness.blobStore.root, 'live.part', 1_000);

      const report = await sweeper.sweep(Date.now() + 2 * DAY_MS);
      expect(report).toMatchObject({ collectedBlobs: 1, stalePartials: 1 });
      expect(await harness.blobStore.has(derived.sha256)).toBe(false);
      expect(await harness.blobStore.has(file.sha256)).toBe(true);
      expect(await readdir(join(harness.blobStore.root, '.tmp'))).toEqual(['live.part']);
    },
  );

  redisTest(
    'one replica sweeps at a time (a Redis lock), and leaves a lock it does not own alone',
    async ({ redis }) => {
      const harness = await startApi(redis);
      const { sweeper } = sweeperFor(harness, redis.prefix, 0);
      const lock = `${redis.prefix}:sweep:lock`;
      await harness.redis.set(lock, 'another-replica', 'PX', 60_000);
      expect(await sweeper.sweepLocked()).toBeUndefined();
      expect(await harness.redis.get(lock)).toBe('another-replica');
      await harness.redis.del(lock);
      expect(await sweeper.sweepLocked()).toMatchObject({ expiredFiles: 0 });
      expect(await harness.redis.exists(lock)).toBe(0);
    },
  );

  redisTest('the API sweeps dead .part files at start-up', async ({ redis }) => {
    const harness = await startApi(redis, { GEMBATCH_SWEEP_INTERVAL_SECONDS: '3600' });
    await partial(harness.blobStore.root, 'killed-upload.part', STALE_PARTIAL_MS + 60_000);
    await harness.app.ready();
    await vi.waitFor(async () => expect(await readdir(join(harness.blobStore.root, '.tmp'))).toEqual([]), {
      timeout: 15_000,
      interval: 50,
    });
  });
});

describe('audit stream caps', () => {
  redisTest('trims entries past the audit retention and keeps the stream under its length cap', async ({ redis }) => {
    const harness = await startApi(redis);
    const audit = new AuditLog(harness.redis, redis.prefix, { maxEntries: 1000, retentionSeconds: 3600 });
    for (let i = 0; i < 3; i += 1)
      await audit.append({ action: 'job.read', tenant: 'default', actor: 'tenant', resource: `job_${i}` });
    expect(await audit.trim()).toBe(0);
    expect((await audit.query()).data.map((e) => e.resource)).toEqual(['job_2', 'job_1', 'job_0']);
    expect(await audit.trim(Date.now() + 3_601_000)).toBe(3);
    expect((await audit.query()).data).toEqual([]);

    // MAXLEN ~ trims in whole macro nodes (100 entries by default), so the cap holds within one node.
    const capped = new AuditLog(harness.redis, `${redis.prefix}-capped`, { maxEntries: 1000, retentionSeconds: 3600 });
    for (let i = 0; i < 1_500; i += 1)
      await capped.append({ action: 'job.read', tenant: 'default', actor: 'tenant', resource: `job_${i}` });
    expect(await harness.redis.xlen(redisKeys.audit(`${redis.prefix}-capped`))).toBeLessThanOrEqual(1_100);
  });
});
