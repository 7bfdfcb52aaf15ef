import {
  checkTaskRequest,
  GembatchError,
  newJobId,
  QUEUE_NAMES,
  type CreateJobRequest,
  type ExtractJobData,
  type FileRecord,
  type GenerateJobData,
  type JobSpec,
  type JobView,
} from '@gembatch/contracts';
import type { JobAdmission, JobProducer } from '@gembatch/queue';
import type { BlobStore, FileStore } from '@gembatch/storage';
import type { QueuedJobQuota } from './queued-job-quota.ts';
import { checkRequestLimits, type RequestLimits } from './request-limits.ts';

export interface JobSubmissionDeps {
  blobStore: BlobStore;
  files: FileStore;
  producer: Pick<JobProducer, 'submit' | 'retentionSeconds'>;
  /** Fair share between tenants (`GEMBATCH_JOB_FAIR_SHARE`): jobs go through it instead of straight to `producer`. Unset: straight. */
  admission?: Pick<JobAdmission, 'submit'>;
  /** The tenant's queued-jobs limit; unset: none. */
  quota?: QueuedJobQuota;
  /** Caps on metadata, schemas and inline text. */
  limits: RequestLimits;
}

/**
 * Turns a validated `POST /v1/jobs` body into a queued job: checks the task options and the file,
 * stores inline text in the blob store, and adds the job to its first queue (`extract` for a file,
 * `generate` for text). Returns the new job's view. Bad options or a missing file →
 * `GB_ERR_BAD_REQUEST` / `GB_ERR_FILE_NOT_FOUND` naming the field. `jobId` is fixed by the caller
 * when an idempotency key has claimed it.
 */
export async function submitJob(
  deps: JobSubmissionDeps,
  tenant: string,
  body: CreateJobRequest,
  jobId: string = newJobId(),
): Promise<JobView> {
  const checked = checkTaskRequest(body);
  if (!checked.success)
    throw new GembatchError(
      'GB_ERR_BAD_REQUEST',
      checked.issues.map((issue) => `${issue.path.map(String).join('.')}: ${issue.message}`).join('; '),
    );
  checkRequestLimits(body, deps.limits);

  let file: FileRecord | undefined;
  if (body.file_id !== undefined) {
    file = await deps.files.find(tenant, body.file_id);
    if (!file) throw new GembatchError('GB_ERR_FILE_NOT_FOUND', `file_id: no file ${body.file_id}`);
  }

  const spec: JobSpec = {
    job_id: jobId,
    tenant,
    task: body.task,
    options: checked.options,
    max_tokens: checked.maxTokens,
    ...(body.json_schema ? { json_schema: body.json_schema } : {}),
    ...(body.metadata ? { metadata: body.metadata } : {}),
    submitted_at: Date.now(),
  };
  const priority = body.priority !== undefined ? { priority: body.priority } : {};
  await deps.quota?.admit(tenant, [spec.job_id]);
  try {
    await enqueue(deps, spec, file, body, priority);
  } catch (error) {
    await deps.quota?.release(tenant, [spec.job_id]).catch(() => undefined);
    throw error;
  }
  return {
    id: spec.job_id,
    object: 'job',
    task: spec.task,
    status: 'queued',
    progress: 0,
    created_at: new Date(spec.submitted_at).toISOString(),
    started_at: null,
    finished_at: null,
    usage: null,
    timings: null,
    finish_reason: null,
    error: null,
    input: file ? { file_id: file.id } : {},
    ...(spec.metadata ? { metadata: spec.metadata } : {}),
  };
}

/** Adds the job to its first queue: `extract` for a file, `generate` for inline text (stored and referenced first). */
async function enqueue(
  deps: JobSubmissionDeps,
  spec: JobSpec,
  file: FileRecord | undefined,
  body: CreateJobRequest,
  priority: { priority?: number },
): Promise<void> {
  if (file) {
    const data: ExtractJobData = {
      ...spec,
      file: { id: file.id, sha256: file.sha256, bytes: file.bytes, filename: file.filename },
      ...(body.password ? { password: body.password } : {}),
      ...priority,
    };
    await add(deps, data, QUEUE_NAMES.extract, priority);
  } else {
    // The job references its text, so deleting another job with the same text keeps it. The reference is
    // looked at again once the job may have expired: it goes when the job has.
    const checkAt = spec.submitted_at + deps.producer.retentionSeconds * 1000;
    const { sha256 } = await deps.blobStore.put(Buffer.from(body.text ?? '', 'utf8'), {
      beforeCommit: (hash) => deps.files.references.acquireForJob(hash, spec.job_id, checkAt),
    });
    const data: GenerateJobData = { ...spec, input: { type: 'text', sha256 } };
    await add(deps, data, QUEUE_NAMES.generate, priority);
  }
}

/** Through the fair-share admission when there is one (admitted now or parked for the feeder), else straight into the queue. */
async function add(
  deps: JobSubmissionDeps,
  data: ExtractJobData | GenerateJobData,
  queue: typeof QUEUE_NAMES.extract | typeof QUEUE_NAMES.generate,
  priority: { priority?: number },
): Promise<void> {
  if (deps.admission) await deps.admission.submit(data, queue, priority);
  else await deps.producer.submit(data, queue, priority);
}
