import type { Job, JobState } from 'bullmq';
import {
  bullmqKeys,
  decodeFailedReason,
  GembatchError,
  GenerateJobResult,
  JOB_ID_PATTERN,
  JobSpec,
  QUEUE_NAMES,
  redisKeys,
  type ErrorBody,
  type JobStatus,
  type JobView,
  type QueueName,
} from '@gembatch/contracts';
import { parsePendingJob, unparkJob } from './job-admission.ts';
import type { JobQueues } from './job-producer.ts';
import { parseStoredJson } from './stored-json.ts';

/**
 * The query side of the job lifecycle: a job's public view, its result address, cancellation and
 * a tenant's recent jobs, all derived from BullMQ's own records. A job keeps its id through every
 * queue it passes (extract → generate or generate-media); the furthest stage found is its state.
 */

/** Stages in the order a job passes them; a later stage that exists is the current one. */
const STAGE_ORDER: readonly QueueName[] = [QUEUE_NAMES.extract, QUEUE_NAMES.generate, QUEUE_NAMES.generateMedia];
/** Children of a chunked parent looked at when cancelling it (a long document rarely has more). */
const MAX_CANCELLED_CHILDREN = 1_000;
/** Default and largest page of `listJobs`. */
const DEFAULT_LIST_LIMIT = 20;
const MAX_LIST_LIMIT = 100;
/** Index entries `listJobs` reads at most per call, so a rare status filter cannot scan forever. */
const MAX_LIST_SCAN = 1_000;
/** Index entries read per round trip while listing. */
const LIST_PAGE = 50;

/** One stage of a job as BullMQ holds it: the plain fields the view is derived from. */
export interface JobStageSnapshot {
  queue: QueueName;
  state: JobState | 'unknown';
  data: unknown;
  progress: unknown;
  processedOn?: number | undefined;
  finishedOn?: number | undefined;
  failedReason?: string | undefined;
  attemptsMade: number;
  returnvalue: unknown;
}

/** What a cancelled job leaves behind (`redisKeys.cancelled`), so it reads as cancelled even once removed. */
export interface CancelMarker {
  tenant: string;
  task: JobView['task'];
  submitted_at: number;
  cancelled_at: number;
  input: JobView['input'];
  metadata?: Record<string, string>;
}

interface StageRecord {
  job: Job;
  snapshot: JobStageSnapshot;
}

interface JobRecord {
  stages: StageRecord[];
  marker: CancelMarker | undefined;
  /** A plain job still waiting for a fair-share slot (`JobAdmission`): not in any queue yet, reads as `queued`. */
  pending: JobStageSnapshot | undefined;
}

/** The snapshots a view is derived from: the queue stages, or the pending submission while there are none. */
function snapshotsOf(record: JobRecord): JobStageSnapshot[] {
  if (record.stages.length === 0 && record.pending) return [record.pending];
  return record.stages.map((s) => s.snapshot);
}

/** `GET /v1/jobs/:id`: the job's view for its tenant. Unknown id or another tenant's job → `GB_ERR_NOT_FOUND`. */
export async function getJobView(store: JobQueues, jobId: string, tenant: string): Promise<JobView> {
  const record = await readJob(store, jobId, tenant);
  return toJobView(jobId, snapshotsOf(record), record.marker);
}

/**
 * The blob sha256 of a completed job's `JobResultDocument`. Unknown → `GB_ERR_NOT_FOUND`; not
 * finished, failed or cancelled → `GB_ERR_CONFLICT` saying which.
 */
export async function getJobResultSha256(store: JobQueues, jobId: string, tenant: string): Promise<string> {
  if (!JOB_ID_PATTERN.test(jobId)) throw notFound(jobId);
  const completed = await readCompletedResultSha256(store, jobId, tenant);
  if (completed !== undefined) return completed;
  const record = await readJob(store, jobId, tenant);
  const snapshots = snapshotsOf(record);
  const view = toJobView(jobId, snapshots, record.marker);
  if (view.status === 'failed')
    throw new GembatchError(
      'GB_ERR_CONFLICT',
      `job ${jobId} failed, so it has no result: ${view.error?.code}: ${view.error?.message}`,
      { details: { status: view.status } },
    );
  if (view.status !== 'completed')
    throw new GembatchError(
      'GB_ERR_CONFLICT',
      `job ${jobId} is ${view.status}; a result exists only once it is completed`,
      { details: { status: view.status } },
    );
  const result = GenerateJobResult.safeParse(snapshots.at(-1)?.returnvalue);
  if (!result.success) throw new GembatchError('GB_ERR_INTERNAL', `job ${jobId} completed without a readable result`);
  return result.data.result_sha256;
}

/**
 * Cancels a job that has not finished: waiting stages are removed from their queue, running ones
 * are aborted by the worker that holds them (the job id is published on `redisKeys.cancelChannel`,
 * and so are the ids of a chunked job's running children; its waiting ones are removed), and a marker makes the job read
 * `cancelled` for the retention window. Idempotent. Completed or failed → `GB_ERR_CONFLICT`.
 */
export async function cancelJob(store: JobQueues, jobId: string, tenant: string): Promise<JobView> {
  const record = await readJob(store, jobId, tenant);
  const snapshots = snapshotsOf(record);
  if (record.marker) return toJobView(jobId, snapshots, record.marker);
  const before = toJobView(jobId, snapshots, undefined);
  if (before.status === 'completed' || before.status === 'failed')
    throw new GembatchError('GB_ERR_CONFLICT', `job ${jobId} is already ${before.status} and cannot be cancelled`, {
      details: { status: before.status },
    });

  const marker: CancelMarker = {
    tenant,
    task: before.task,
    submitted_at: Date.parse(before.created_at),
    cancelled_at: Date.now(),
    input: before.input,
    ...(before.metadata ? { metadata: before.metadata } : {}),
  };
  // Marker first: a stage that finishes right now and checks it will not enqueue the next one.
  await store.redis.set(
    redisKeys.cancelled(store.prefix, jobId),
    JSON.stringify(marker),
    'EX',
    store.retentionSeconds,
    'NX',
  );
  // Not admitted yet: out of its tenant's pending list (one the feeder admits right now is stopped by the marker).
  if (record.pending) await unparkJob(store, jobId, tenant);

  const current = record.stages.at(-1);
  const toAbort = [jobId];
  if (current?.snapshot.state === 'waiting-children')
    toAbort.push(...(await removeWaitingChildren(store, current.job)));
  if (current && current.snapshot.state !== 'active') {
    // Fails while a child is still running, or if a worker took the job a moment ago: the publish below aborts those.
    await current.job.remove({ removeChildren: true }).catch(() => undefined);
  }
  const channel = redisKeys.cancelChannel(store.prefix);
  await Promise.all(toAbort.map((id) => store.redis.publish(channel, id)));
  return toJobView(jobId, snapshots, marker);
}

export interface ListJobsOptions {
  /** Only jobs in this status. Defaults to all. */
  status?: JobStatus;
  /** Most jobs returned, newest first (1..100). Defaults to `20`. */
  limit?: number;
}

/**
 * A tenant's most recent jobs (newest first) from its job index, optionally of one status.
 * Reads at most 1,000 index entries per call; ids whose jobs have expired are pruned.
 */
export async function listJobs(store: JobQueues, tenant: string, options: ListJobsOptions = {}): Promise<JobView[]> {
  const limit = Math.max(1, Math.min(options.limit ?? DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT));
  const index = redisKeys.tenantJobs(store.prefix, tenant);
  const views: JobView[] = [];
  let start = 0;
  let scanned = 0;
  while (scanned < MAX_LIST_SCAN && views.length < limit) {
    const ids = await store.redis.zrevrange(index, start, start + LIST_PAGE - 1);
    if (ids.length === 0) break;
    scanned += ids.length;
    const found = await Promise.all(
      ids.map((id) => getJobView(store, id, tenant).catch((error: unknown) => notFoundAsUndefined(error))),
    );
    const gone = ids.filter((_, i) => found[i] === undefined);
    if (gone.length > 0) await store.redis.zrem(index, ...gone);
    // Pruned entries no longer take up index positions.
    start += ids.length - gone.length;
    for (const view of found) {
      if (view && (options.status === undefined || view.status === options.status) && views.length < limit)
        views.push(view);
    }
  }
  return views;
}

/**
 * Derives the public view from a job's stages (in queue order, present ones only) and its cancel
 * marker. Pure: unit-testable with plain objects.
 */
export function toJobView(
  jobId: string,
  stages: readonly JobStageSnapshot[],
  marker: CancelMarker | undefined,
): JobView {
  const live = stages.filter((s) => s.state !== 'unknown');
  const current = live.at(-1);
  const spec = current ? JobSpec.safeParse(current.data) : undefined;
  if (!spec?.success && !marker) throw notFound(jobId);
  const data = spec?.success ? spec.data : undefined;
  const task = data?.task ?? (marker as CancelMarker).task;
  const submittedAt = data?.submitted_at ?? (marker as CancelMarker).submitted_at;
  const metadata = data?.metadata ?? marker?.metadata;

  const processedOn = live.map((s) => s.processedOn).filter((t): t is number => typeof t === 'number' && t > 0);
  const generated =
    current && current.queue !== QUEUE_NAMES.extract && current.state === 'completed'
      ? GenerateJobResult.safeParse(current.returnvalue)
      : undefined;
  const result = generated?.success ? generated.data : undefined;
  const status: JobStatus = marker ? 'cancelled' : current ? stageStatus(current) : 'queued';

  let error: ErrorBody | null = null;
  if (status === 'cancelled') error = { code: 'GB_ERR_CANCELLED', message: 'the job was cancelled' };
  else if (status !== 'completed' && current?.failedReason) error = decodeFailedReason(current.failedReason);

  let finishedAt: number | undefined;
  if (status === 'cancelled') finishedAt = marker?.cancelled_at;
  else if (status === 'completed' || status === 'failed') finishedAt = current?.finishedOn;

  return {
    id: jobId,
    object: 'job',
    task,
    status,
    progress: status === 'completed' ? 100 : status === 'queued' ? 0 : percent(current?.progress),
    created_at: new Date(submittedAt).toISOString(),
    started_at: processedOn.length > 0 ? new Date(Math.min(...processedOn)).toISOString() : null,
    finished_at: finishedAt ? new Date(finishedAt).toISOString() : null,
    usage: result?.usage ?? null,
    timings: result?.timings ?? null,
    finish_reason: result?.finish_reason ?? null,
    error,
    input: marker && live.length === 0 ? marker.input : stageInput(live),
    ...(metadata ? { metadata } : {}),
  };
}

function stageStatus(stage: JobStageSnapshot): JobStatus {
  const extracting = stage.queue === QUEUE_NAMES.extract;
  switch (stage.state) {
    case 'active':
      return extracting ? 'extracting' : 'running';
    case 'waiting-children':
      return 'running';
    case 'completed':
      // The extract step finished and is handing the job to a generate queue.
      return extracting ? 'queued' : 'completed';
    case 'failed':
      // BullMQ moves a job to failed only when no attempt is left (retries go to delayed/waiting).
      return 'failed';
    default:
      return 'queued';
  }
}

/** The file a job reads, and what it turned out to be once extracted. */
function stageInput(stages: readonly JobStageSnapshot[]): JobView['input'] {
  const input: JobView['input'] = {};
  for (const stage of stages) {
    const data = stage.data as { file?: { id?: unknown }; input?: { file_id?: unknown; media_type?: unknown } } | null;
    if (typeof data?.file?.id === 'string') input.file_id = data.file.id;
    if (typeof data?.input?.file_id === 'string') input.file_id = data.input.file_id;
    if (typeof data?.input?.media_type === 'string') input.media_type = data.input.media_type;
  }
  return input;
}

function percent(progress: unknown): number {
  return typeof progress === 'number' && Number.isFinite(progress)
    ? Math.max(0, Math.min(100, Math.round(progress)))
    : 0;
}

/**
 * A job's stages as BullMQ holds them (live ones, in queue order) and its cancel marker, for its
 * tenant only (`GB_ERR_NOT_FOUND` otherwise). For code that acts on the records themselves (deletion).
 */
export async function readJobRecord(
  store: JobQueues,
  jobId: string,
  tenant: string,
): Promise<{
  stages: Array<{ job: Job; snapshot: JobStageSnapshot }>;
  marker: CancelMarker | undefined;
  snapshots: JobStageSnapshot[];
}> {
  const record = await readJob(store, jobId, tenant);
  return { stages: record.stages, marker: record.marker, snapshots: snapshotsOf(record) };
}

/** The generate queues, the later stage first: the later one holding a job is its current stage. */
const GENERATE_STAGES_LAST_FIRST = [QUEUE_NAMES.generateMedia, QUEUE_NAMES.generate] as const;

/**
 * The result address of a job completed in a generate queue, its tenant's and not cancelled, read
 * in one pipelined round trip: the usual `GET /v1/jobs/:id/result` once a job is done, without
 * {@link readJob}'s second round trip and BullMQ's state script (Lua). Against the record as it was
 * read before (the state script in all three stage queues) it costs Redis 3–4.5× less CPU
 * (`pnpm bench:outcome-reads`). `undefined` whenever the answer is not that plain (not completed, cancelled, another
 * tenant's, unreadable): the caller then reads the whole record, which says why. Not a MULTI: the
 * commands may interleave with others, but BullMQ completes a job in one script, so a job seen in
 * `completed` already has its return value, and any other mix of replies falls back.
 */
async function readCompletedResultSha256(store: JobQueues, jobId: string, tenant: string): Promise<string | undefined> {
  const pipeline = store.redis.pipeline().exists(redisKeys.cancelled(store.prefix, jobId));
  for (const queueName of GENERATE_STAGES_LAST_FIRST) {
    const queue = store.queues[queueName];
    pipeline.zscore(queue.toKey('completed'), jobId).hmget(queue.toKey(jobId), 'data', 'returnvalue');
  }
  const replies = (await pipeline.exec()) ?? [];
  if (replies.some(([error]) => error)) return undefined;
  const [cancelled, mediaCompleted, mediaFields, textCompleted, textFields] = replies.map(([, value]) => value) as [
    number,
    string | null,
    Array<string | null>,
    string | null,
    Array<string | null>,
  ];
  if (cancelled !== 0) return undefined;
  // A job record always has data: the later stage that holds one is the job's current stage.
  const [completed, [data, returnvalue]] =
    mediaFields[0] !== null ? [mediaCompleted, mediaFields] : [textCompleted, textFields];
  if (completed === null || data == null || returnvalue == null) return undefined;
  const spec = JobSpec.safeParse(parseStoredJson(data));
  if (!spec.success || spec.data.tenant !== tenant) return undefined;
  const result = GenerateJobResult.safeParse(parseStoredJson(returnvalue));
  return result.success ? result.data.result_sha256 : undefined;
}

async function readJob(store: JobQueues, jobId: string, tenant: string): Promise<JobRecord> {
  if (!JOB_ID_PATTERN.test(jobId)) throw notFound(jobId);
  // One round trip for the pending submission, which stage queues hold a record of the job and its
  // cancel marker; BullMQ's state script (a Lua call) then runs only in those queues, usually one
  // instead of three. In that order: the pending field stays until the job is in its queue, and a
  // cancel writes its marker before it removes the job, so a job admitted or cancelled while these
  // are read is still seen.
  const probe = store.redis.pipeline().hget(redisKeys.pendingJobData(store.prefix), jobId);
  for (const queue of STAGE_ORDER) probe.exists(store.queues[queue].toKey(jobId));
  probe.get(redisKeys.cancelled(store.prefix, jobId));
  const replies = ((await probe.exec()) ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  });
  const rawPending = replies[0] as string | null;
  const held = replies.slice(1, 1 + STAGE_ORDER.length) as number[];
  const rawMarker = replies[1 + STAGE_ORDER.length] as string | null;
  const pendingSubmission = parsePendingJob(rawPending);
  // State before the job hash: a job read first and then seen 'completed' could lack its return value.
  const jobs = await Promise.all(
    STAGE_ORDER.map(async (queue, index) => {
      if (held[index] !== 1) return undefined;
      const state = await store.queues[queue].getJobState(jobId);
      return state === 'unknown' ? undefined : { state, job: await store.queues[queue].getJob(jobId) };
    }),
  );
  const stages = await Promise.all(
    jobs.map(async (found, index): Promise<StageRecord | undefined> => {
      const job = found?.job;
      if (!job) return undefined;
      const state = found.state;
      const snapshot: JobStageSnapshot = {
        queue: STAGE_ORDER[index] as QueueName,
        state,
        data: job.data,
        progress: job.progress,
        processedOn: job.processedOn,
        finishedOn: job.finishedOn,
        failedReason: job.failedReason || undefined,
        attemptsMade: job.attemptsMade,
        returnvalue: job.returnvalue,
      };
      return { job, snapshot };
    }),
  );
  const present = stages.filter((s): s is StageRecord => s !== undefined && s.snapshot.state !== 'unknown');
  const marker = rawMarker ? parseMarker(rawMarker) : undefined;
  const pending: JobStageSnapshot | undefined = pendingSubmission
    ? {
        queue: pendingSubmission.queue,
        state: 'waiting',
        data: pendingSubmission.data,
        progress: 0,
        attemptsMade: 0,
        returnvalue: null,
      }
    : undefined;
  const owner = marker?.tenant ?? ownerOf(present.at(-1)?.snapshot.data) ?? ownerOf(pending?.data);
  if ((present.length === 0 && !marker && !pending) || owner !== tenant) throw notFound(jobId);
  return { stages: present, marker, pending };
}

function ownerOf(data: unknown): string | undefined {
  const tenant = (data as { tenant?: unknown } | null | undefined)?.tenant;
  return typeof tenant === 'string' ? tenant : undefined;
}

function parseMarker(raw: string): CancelMarker | undefined {
  try {
    const value = JSON.parse(raw) as Partial<CancelMarker>;
    return typeof value.tenant === 'string' && typeof value.task === 'string' ? (value as CancelMarker) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes a chunked job's children that are not running yet, so no worker starts them; returns the
 * ids of those it could not remove (running, or taken a moment ago), which must be aborted instead.
 */
async function removeWaitingChildren(store: JobQueues, parent: Job): Promise<string[]> {
  const { unprocessed = [] } = await parent.getDependencies({ unprocessed: { count: MAX_CANCELLED_CHILDREN } });
  const children = unprocessed.flatMap((key) => {
    const child = bullmqKeys.parseJob(store.prefix, key, STAGE_ORDER);
    return child ? [child] : [];
  });
  const running = await Promise.all(
    children.map(async ({ queue, id }) => {
      const child = await store.queues[queue].getJob(id);
      if (!child || (await child.getState()) === 'active') return id;
      return child.remove().then(
        () => undefined,
        () => id,
      );
    }),
  );
  return running.filter((id): id is string => id !== undefined);
}

function notFound(jobId: string): GembatchError {
  return new GembatchError('GB_ERR_NOT_FOUND', `no job ${jobId.slice(0, 100)}`);
}

function notFoundAsUndefined(error: unknown): undefined {
  if (error instanceof GembatchError && error.code === 'GB_ERR_NOT_FOUND') return undefined;
  throw error;
}
