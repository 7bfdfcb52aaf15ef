import { join } from 'node:path';
import { loadEnv } from '@gembatch/config';
import {
  newFileId,
  newJobId,
  QUEUE_NAMES,
  TASKS,
  type ExtractJobData,
  type GenerateJobData,
  type JobView,
  type TaskName,
} from '@gembatch/contracts';
import { getJobView, JobProducer } from '@gembatch/queue';
import { FileSystemBlobStore } from '@gembatch/storage';
import { createLogger } from '@gembatch/telemetry';
import { closeAfterTest, openTestRedis, tempDir, type RedisTestContext } from '@gembatch/testing';
import { Writable } from 'node:stream';
import { vi } from 'vitest';
import { WorkerEnv } from '../src/env.ts';
import { WorkerNode } from '../src/node/worker-node.ts';

export const TENANT = 'default';

/** Everything a worker test drives: a real node (model, BullMQ workers), a producer and the blob store. */
export interface WorkerHarness {
  node: WorkerNode;
  producer: JobProducer;
  blobs: FileSystemBlobStore;
  /** `GEMBATCH_DATA_DIR` of the node: pass it to a second node that must read the same blobs. */
  dataDir: string;
  /** Every log line the node wrote (JSON), for privacy checks. */
  logLines: string[];
  submitText(text: string, task?: TaskName, extra?: Partial<GenerateJobData>): Promise<string>;
  submitFile(path: string, task?: TaskName, extra?: Partial<ExtractJobData>): Promise<string>;
  /** Waits (bounded) until the job completes, fails or is cancelled. */
  settle(jobId: string, timeoutMs?: number): Promise<JobView>;
}

/** Starts a real worker node in this process against the test's Redis, closed when the test ends. */
export async function startWorker(redis: RedisTestContext, env: Record<string, string>): Promise<WorkerHarness> {
  const dir = await tempDir();
  const config = loadEnv(WorkerEnv, {
    REDIS_URL: redis.url,
    GEMBATCH_REDIS_PREFIX: redis.prefix,
    GEMBATCH_DATA_DIR: dir.path,
    GEMBATCH_THREADS: '1',
    GEMBATCH_METRICS_PORT: '0',
    GEMBATCH_LIVEZ_PORT: '0',
    GEMBATCH_SHUTDOWN_GRACE_SECONDS: '5',
    GEMBATCH_NODE_ID: 'test-node',
    ...env,
  });
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0),
      );
      done();
    },
  });
  const node = new WorkerNode(config, createLogger({ service: 'worker', level: 'debug', destination: sink }));
  closeAfterTest({ close: () => node.close(5_000) });
  closeAfterTest({ close: () => dir.cleanup() });
  await node.start();
  const producer = closeAfterTest(
    new JobProducer({ connection: closeAfterTest(openTestRedis(redis.url)), prefix: redis.prefix, attempts: 1 }),
  );
  const blobs = new FileSystemBlobStore({ root: join(config.GEMBATCH_DATA_DIR, 'blobs') });

  // Options are parsed as the API parses them, so defaults apply.
  const spec = (task: TaskName, options: Record<string, unknown> = {}) => ({
    job_id: newJobId(),
    tenant: TENANT,
    task,
    options: TASKS[task].options.parse(options),
    max_tokens: 24,
    submitted_at: Date.now(),
  });
  return {
    node,
    producer,
    blobs,
    dataDir: config.GEMBATCH_DATA_DIR,
    logLines,
    async submitText(text, task = 'summarize', extra = {}) {
      const { sha256 } = await blobs.put(Buffer.from(text, 'utf8'));
      const data: GenerateJobData = {
        ...spec(task, extra.options),
        input: { type: 'text', sha256 },
        ...extra,
        options: spec(task, extra.options).options,
      };
      await producer.submit(data, QUEUE_NAMES.generate);
      return data.job_id;
    },
    async submitFile(path, task = 'summarize', extra = {}) {
      const { createReadStream } = await import('node:fs');
      const { sha256, bytes } = await blobs.put(createReadStream(path));
      const data: ExtractJobData = {
        ...spec(task, extra.options),
        file: { id: newFileId(), sha256, bytes, filename: path.split('/').at(-1) as string },
        ...extra,
        options: spec(task, extra.options).options,
      };
      await producer.submit(data, QUEUE_NAMES.extract);
      return data.job_id;
    },
    async settle(jobId, timeoutMs = 60_000) {
      return vi.waitFor(
        async () => {
          const view = await getJobView(producer, jobId, TENANT);
          if (!['completed', 'failed', 'cancelled'].includes(view.status))
            throw new Error(`job ${jobId} is ${view.status}`);
          return view;
        },
        { timeout: timeoutMs, interval: 50 },
      );
    },
  };
}
