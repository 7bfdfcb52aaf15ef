import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { claimIdempotencyKey, releaseIdempotencyKey } from '@gembatch/batches';
import { CreateJobRequest, GembatchError, newJobId } from '@gembatch/contracts';
import {
  cancelJob,
  deleteJob,
  getJobResultSha256,
  getJobView,
  listJobs,
  type JobBlobCleaner,
  type JobQueues,
} from '@gembatch/queue';
import type { BlobStore } from '@gembatch/storage';
import type { AuditLog } from '../audit-log.ts';
import { submitJob, type JobSubmissionDeps } from '../job-submission.ts';
import {
  ErrorResponse,
  IdParams,
  JobDeleted,
  JobList,
  JobListQuery,
  JobResultResponse,
  JobViewResponse,
} from './api-schemas.ts';

export interface JobRouteDeps extends JobSubmissionDeps {
  blobStore: BlobStore;
  queues: JobQueues;
  audit: AuditLog;
  /** Removes a deleted job's blobs by reference. */
  cleaner: JobBlobCleaner;
  /** Idempotency keys live here. */
  redis: Redis;
  prefix: string;
}

const IdempotencyHeaders = z
  .object({
    'idempotency-key': z
      .string()
      .optional()
      .describe(
        'Repeat a submission safely: the same key (per tenant, 24 h) returns the job the first request created.',
      ),
  })
  .loose();

/** Jobs: submit, read, result, cancel, list. Handlers stay thin: the lifecycle lives in `@gembatch/queue`. */
export function registerJobRoutes(app: FastifyInstance, deps: JobRouteDeps): void {
  app.post(
    '/v1/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Submit a job on an uploaded file (`file_id`) or inline `text`.',
        body: CreateJobRequest,
        headers: IdempotencyHeaders,
        response: { 202: JobViewResponse, 400: ErrorResponse },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      let jobId: string | undefined;
      if (typeof key === 'string') {
        jobId = newJobId();
        const existing = await claimIdempotencyKey(deps.redis, deps.prefix, request.tenant, 'jobs', key, jobId);
        if (existing !== undefined)
          return reply
            .code(202)
            .header('location', `/v1/jobs/${existing}`)
            .send(await getJobView(deps.queues, existing, request.tenant));
      }
      const view = await submitJob(deps, request.tenant, request.body as CreateJobRequest, jobId).catch(
        async (error: unknown) => {
          // A refused submission must not pin the key to a job that does not exist.
          if (typeof key === 'string')
            await releaseIdempotencyKey(deps.redis, deps.prefix, request.tenant, 'jobs', key);
          throw error;
        },
      );
      request.log.info({ jobId: view.id, task: view.task, fileId: view.input.file_id }, 'job submitted');
      await deps.audit.record(request, 'job.submit', view.id);
      return reply.code(202).header('location', `/v1/jobs/${view.id}`).send(view);
    },
  );

  app.get(
    '/v1/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: "This tenant's most recent jobs, newest first.",
        querystring: JobListQuery,
        response: { 200: JobList, 400: ErrorResponse },
      },
    },
    async (request) => {
      const query = request.query as z.output<typeof JobListQuery>;
      return { object: 'list' as const, data: await listJobs(deps.queues, request.tenant, query) };
    },
  );

  app.get(
    '/v1/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'A job: status, progress, timings, token counts, error.',
        params: IdParams,
        response: { 200: JobViewResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as z.output<typeof IdParams>;
      const view = await getJobView(deps.queues, id, request.tenant);
      await deps.audit.record(request, 'job.read', id);
      return view;
    },
  );

  app.get(
    '/v1/jobs/:id/result',
    {
      schema: {
        tags: ['jobs'],
        summary: "A completed job's result document; 409 until it is completed.",
        params: IdParams,
        response: { 200: JobResultResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request, reply) => {
      const { id } = request.params as z.output<typeof IdParams>;
      const sha256 = await getJobResultSha256(deps.queues, id, request.tenant);
      const document = await deps.blobStore.get(sha256).catch((error: unknown) => {
        // The job says it has a result, so a missing blob is our fault, not the caller's.
        throw error instanceof GembatchError && error.code === 'GB_ERR_FILE_NOT_FOUND'
          ? new GembatchError('GB_ERR_INTERNAL', `the result of job ${id} is missing from the blob store`, {
              cause: error,
            })
          : error;
      });
      await deps.audit.record(request, 'job.result', id);
      // Streamed as stored: the document is already JSON, and may be large.
      return reply.type('application/json; charset=utf-8').send(document);
    },
  );

  app.post(
    '/v1/jobs/:id/cancel',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a job that has not finished; 409 when it has.',
        params: IdParams,
        response: { 200: JobViewResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as z.output<typeof IdParams>;
      const view = await cancelJob(deps.queues, id, request.tenant);
      request.log.info({ jobId: id }, 'job cancelled');
      await deps.audit.record(request, 'job.cancel', id);
      return view;
    },
  );

  app.delete(
    '/v1/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary:
          'Delete a job: its records, chunk data, result and inline text (cancelled first if it has not finished). The uploaded file it read stays (DELETE /v1/files/:id).',
        params: IdParams,
        response: { 200: JobDeleted, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as z.output<typeof IdParams>;
      const deleted = await deleteJob(deps.queues, id, request.tenant, deps.cleaner);
      await deps.quota?.release(request.tenant, [id]);
      request.log.info({ jobId: id, blobs: deleted.blobs, cancelled: deleted.cancelled }, 'job deleted');
      await deps.audit.record(request, 'job.delete', id);
      return { id, object: 'job' as const, deleted: true as const };
    },
  );
}
