import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FlowProducer, Job, JobNode } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { decodeFailedReason } from '@gembatch/contracts';
import type { JobQueues } from '@gembatch/queue';
import { ADMIN_PREFIX } from './admin-auth.ts';

/** Where the operator UI lives, below the admin prefix. */
const ADMIN_BOARD_PATH = '/queues';
/** The board's full URL path (its links are absolute). */
const ADMIN_BASE_PATH = `${ADMIN_PREFIX}${ADMIN_BOARD_PATH}`;

/** The only HTTP methods the board answers: every write action of Bull Board is a PUT, POST or PATCH. */
const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * What the board may show of a job's payload: ids, sizes, task, timestamps. Options, prompts,
 * schemas, metadata, file names and PDF passwords never leave Redis through the board.
 */
function redactJobData(data: unknown): Record<string, unknown> {
  const value = (data ?? {}) as Record<string, unknown>;
  const file = value.file as { id?: unknown; sha256?: unknown; bytes?: unknown } | undefined;
  const input = value.input as
    | { type?: unknown; sha256?: unknown; file_id?: unknown; media_type?: unknown }
    | undefined;
  const chunk = value.chunk as { index?: unknown; count?: unknown } | undefined;
  return {
    job_id: value.job_id,
    tenant: value.tenant,
    task: value.task,
    max_tokens: value.max_tokens,
    submitted_at: value.submitted_at,
    ...(file ? { file: { id: file.id, sha256: file.sha256, bytes: file.bytes } } : {}),
    ...(input
      ? { input: { type: input.type, sha256: input.sha256, file_id: input.file_id, media_type: input.media_type } }
      : {}),
    ...(chunk ? { chunk: { index: chunk.index, count: chunk.count } } : {}),
    redacted: 'options, prompts, schemas, metadata, file names and passwords are not shown',
  };
}

/** A job's return value is model output or extracted text: the board shows only whether there is one and its size. */
function redactReturnValue(value: unknown): Record<string, unknown> | null {
  if (value === undefined || value === null) return null;
  const ok =
    typeof value === 'object' && typeof (value as { ok?: unknown }).ok === 'boolean'
      ? (value as { ok: boolean }).ok
      : undefined;
  return {
    ...(ok === undefined ? {} : { ok }),
    bytes: Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8'),
    redacted: 'results are read through GET /v1/jobs/:id/result',
  };
}

/**
 * A failure reason keeps its stable `GB_ERR_*` code and loses its message: messages can quote
 * document-derived text (a schema violation, a parser's complaint about a line).
 */
function redactFailedReason(reason: string | null | undefined): string | undefined {
  if (!reason) return undefined;
  return `${decodeFailedReason(reason).code}: (message redacted)`;
}

/** Progress is a percentage here; anything else a processor might report is not shown. */
function redactProgress(progress: unknown): number | undefined {
  return typeof progress === 'number' ? progress : undefined;
}

/**
 * Bull Board 9.10.1 formats `data`, `returnValue`, `name` and `progress` through adapter
 * formatters, but not `failedReason`, `stacktrace`, job logs or a flow's ignored child failures.
 * This view of a job answers the board's reads with those redacted at the source: `toJSON` (what
 * the board's `formatJob` serialises) and `getIgnoredChildrenFailures` (what its flow view shows).
 * Every other property and method falls through to the real job.
 */
function redactedJob<T extends Job>(job: T): T {
  return Object.create(job, {
    toJSON: {
      value: () => {
        const json = job.toJSON();
        return { ...json, failedReason: redactFailedReason(json.failedReason), stacktrace: [] };
      },
    },
    getIgnoredChildrenFailures: {
      value: async () => {
        const failures = await job.getIgnoredChildrenFailures();
        return Object.fromEntries(Object.entries(failures).map(([key, reason]) => [key, redactFailedReason(reason)]));
      },
    },
  }) as T;
}

function redactedNode(node: JobNode): JobNode {
  return {
    job: redactedJob(node.job),
    ...(node.children ? { children: node.children.map((child) => (child ? redactedNode(child) : child)) } : {}),
  };
}

/** A read-only BullMQ adapter whose every read path hides document-derived text (see `redactedJob`). */
class RedactingBullMQAdapter extends BullMQAdapter {
  override async getJob(id: string): Promise<Job | undefined> {
    const job = await super.getJob(id);
    return job ? redactedJob(job) : job;
  }

  override async getJobs(...args: Parameters<BullMQAdapter['getJobs']>): Promise<Job[]> {
    return (await super.getJobs(...args)).map((job) => redactedJob(job));
  }

  /** Job logs are free text written by processors; none are shown. */
  override async getJobLogs(): Promise<string[]> {
    return [];
  }

  /** Scheduler templates carry job data; the board lists schedulers without them. */
  override async getJobSchedulers(): ReturnType<BullMQAdapter['getJobSchedulers']> {
    return (await super.getJobSchedulers()).map(({ template: _template, ...scheduler }) => scheduler);
  }

  override async getFlowProducer(): Promise<FlowProducer | null> {
    const producer = await super.getFlowProducer();
    if (!producer) return producer;
    return Object.create(producer, {
      getFlow: {
        value: async (...args: Parameters<FlowProducer['getFlow']>) => redactedNode(await producer.getFlow(...args)),
      },
    }) as FlowProducer;
  }
}

export interface AdminBoardOptions {
  queues: JobQueues;
}

/**
 * Mounts Bull Board at `/admin/queues` on the admin scope (see `registerAdminRoutes`, which puts
 * it behind the admin token). The board is read-only: every queue is in Bull Board's
 * `readOnlyMode`, and any method but GET/HEAD is refused with 405 before Bull Board sees it.
 * Job data, return values, failure reasons, stack traces and job logs are redacted.
 */
export async function registerAdminBoard(admin: FastifyInstance, options: AdminBoardOptions): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_BASE_PATH);
  createBullBoard({
    queues: Object.values(options.queues.queues).map((queue) => {
      const adapter = new RedactingBullMQAdapter(queue, {
        readOnlyMode: true,
        allowRetries: false,
        description: `gembatch ${queue.name} queue`,
      });
      adapter.setFormatter('data', redactJobData);
      adapter.setFormatter('returnValue', redactReturnValue);
      adapter.setFormatter('progress', redactProgress);
      return adapter;
    }),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'gembatch (read-only)' } },
  });
  await admin.register(async (board) => {
    board.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      if (READ_METHODS.has(request.method)) return;
      await reply
        .code(405)
        .header('allow', 'GET, HEAD')
        .send({ error: { code: 'GB_ERR_BAD_REQUEST', message: 'method: the admin board is read-only' } });
    });
    await board.register(serverAdapter.registerPlugin(), { prefix: ADMIN_BOARD_PATH });
  });
}
