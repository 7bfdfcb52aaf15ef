import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from 'bullmq';
import {
  GembatchError,
  QUEUE_NAMES,
  redisKeys,
  SHA256_PATTERN,
  type QueueName,
  errorMessage,
} from '@gembatch/contracts';
import type { JobQueues } from './job-producer.ts';
import { cancelJob, readJobRecord, toJobView } from './job-queries.ts';

/** Queues a chunked job's children can be in (they run in their parent's generate queue). */
const CHILD_QUEUES: readonly QueueName[] = [QUEUE_NAMES.generate, QUEUE_NAMES.generateMedia];
/** Why 20 s: an aborted generation stops at its next token and an aborted extraction at its next page; past this the delete answers 409 to be retried. */
const DEFAULT_STOP_TIMEOUT_MS = 20_000;
const STOP_POLL_MS = 50;

/** What job deletion needs from the blob side (kept structural: the queue package knows no blob store). */
export interface JobBlobCleaner {
  /** Drops the job's reference to its inline text; the bytes go when nothing else references them. */
  releaseJob(jobId: string, sha256: string): Promise<boolean>;
  /** The inline texts the job references, known even once its records are gone (cancelled while waiting). */
  inputsOf(jobId: string): Promise<string[]>;
  /** Deletes a blob the job derived (extracted document, chunk text, media, result) unless a record references it. */
  collectIfUnreferenced(sha256: string): Promise<boolean>;
  /** The media blobs an extracted document lists (read before the document goes). */
  mediaOf(documentSha256: string): Promise<string[]>;
}

export interface DeleteJobOptions {
  /** How long to wait for a running job to stop after it is cancelled. Defaults to 20 s. */
  stopTimeoutMs?: number;
}

/** What `deleteJob` removed. */
export interface DeletedJob {
  id: string;
  /** Blobs whose bytes were deleted. */
  blobs: number;
  /** Whether the job was still running or queued (and was cancelled first). */
  cancelled: boolean;
}

/**
 * Deletes a job and everything it left: its records in every queue and its chunk children (their
 * results too), its cancel marker and tenant-index entry, its inline text (once no other job or
 * file references that content) and the blobs it derived (extracted document, media, chunk texts,
 * result). A job still queued or running is cancelled first and waited for. The uploaded file a
 * job read is a resource of its own and stays (`DELETE /v1/files/:id`). Unknown or another
 * tenant's job → `GB_ERR_NOT_FOUND`; a job that will not stop in time → `GB_ERR_CONFLICT`.
 */
export async function deleteJob(
  store: JobQueues,
  jobId: string,
  tenant: string,
  blobs: JobBlobCleaner,
  options: DeleteJobOptions = {},
): Promise<DeletedJob> {
  const first = await readJobRecord(store, jobId, tenant);
  const status = toJobView(jobId, first.snapshots, first.marker).status;
  const running = status === 'queued' || status === 'extracting' || status === 'running';
  // Read before cancelling: a cancel removes waiting stages and children, and with them what they point to.
  const before = running ? await jobsOf(store, jobId) : [];
  if (running) await cancelJob(store, jobId, tenant);

  const deadline = Date.now() + (options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
  let jobs = await jobsOf(store, jobId);
  while ((await anyActive(jobs)) && Date.now() < deadline) {
    await sleep(STOP_POLL_MS);
    jobs = await jobsOf(store, jobId);
  }
  if (await anyActive(jobs))
    throw new GembatchError(
      'GB_ERR_CONFLICT',
      `job ${jobId} is still stopping after it was cancelled; retry the delete in a few seconds`,
    );

  const inputs = new Set<string>();
  const derived = new Set<string>();
  const documents = new Set<string>();
  for (const job of [...first.stages.map((stage) => stage.job), ...before, ...jobs]) {
    const data = job.data as
      | { input?: { type?: string; sha256?: string }; chunk?: { text_sha256?: string } }
      | undefined;
    const returned = job.returnvalue as { document_sha256?: string; result_sha256?: string } | null | undefined;
    if (data?.input?.type === 'text' && data.input.sha256 && !data.chunk) inputs.add(data.input.sha256);
    if (data?.input?.type === 'document' && data.input.sha256) documents.add(data.input.sha256);
    if (data?.chunk?.text_sha256) derived.add(data.chunk.text_sha256);
    if (returned?.document_sha256) documents.add(returned.document_sha256);
    if (returned?.result_sha256) derived.add(returned.result_sha256);
  }
  for (const sha256 of await blobs.inputsOf(jobId)) inputs.add(sha256);
  for (const document of documents) {
    derived.add(document);
    for (const media of await blobs.mediaOf(document).catch(() => [])) derived.add(media);
  }

  // Children first: a parent with children cannot be removed while they exist.
  for (const job of [...jobs].reverse()) {
    await job.remove({ removeChildren: true }).catch((error: unknown) => {
      if (!/could not be removed because it is locked|Missing key/i.test(errorMessage(error))) throw error;
    });
  }
  await store.redis
    .multi()
    .del(redisKeys.cancelled(store.prefix, jobId))
    .zrem(redisKeys.tenantJobs(store.prefix, tenant), jobId)
    .exec();

  let deleted = 0;
  for (const sha256 of inputs) if (await blobs.releaseJob(jobId, sha256)) deleted += 1;
  for (const sha256 of derived)
    if (SHA256_PATTERN.test(sha256) && !inputs.has(sha256) && (await blobs.collectIfUnreferenced(sha256))) deleted += 1;
  return { id: jobId, blobs: deleted, cancelled: running };
}

/** The job's stage records and its chunk children's, wherever they are. */
async function jobsOf(store: JobQueues, jobId: string): Promise<Job[]> {
  const stages = await Promise.all(Object.values(store.queues).map((queue) => queue.getJob(jobId)));
  const jobs = stages.filter((job): job is Job => job !== undefined);
  for (const queue of CHILD_QUEUES) {
    // Children are added together with consecutive indexes, so the first missing one ends the run.
    for (let index = 0; ; index += 1) {
      const child = await store.queues[queue].getJob(`${jobId}-chunk-${index}`);
      if (!child) break;
      jobs.push(child);
    }
  }
  return jobs;
}

async function anyActive(jobs: readonly Job[]): Promise<boolean> {
  const states = await Promise.all(jobs.map((job) => job.getState()));
  return states.includes('active');
}
