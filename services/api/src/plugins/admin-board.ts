import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { JobQueues } from '@gembatch/queue';

/** Where the operator UI lives. */
export const ADMIN_BASE_PATH = '/admin/queues';

/**
 * What the board may show of a job's payload: ids, sizes, task, timestamps. Options, prompts,
 * schemas, metadata, file names and PDF passwords never leave Redis through the board.
 */
export function redactJobData(data: unknown): Record<string, unknown> {
  const value = (data ?? {}) as Record<string, unknown>;
  const file = value.file as { id?: unknown; sha256?: unknown; bytes?: unknown } | undefined;
  const input = value.input as { type?: unknown; sha256?: unknown; file_id?: unknown; media_type?: unknown } | undefined;
  const chunk = value.chunk as { index?: unknown; count?: unknown } | undefined;
  return {
    job_id: value.job_id,
    tenant: value.tenant,
    task: value.task,
    max_tokens: value.max_tokens,
    submitted_at: value.submitted_at,
    ...(file ? { file: { id: file.id, sha256: file.sha256, bytes: file.bytes } } : {}),
    ...(input ? { input: { type: input.type, sha256: input.sha256, file_id: input.file_id, media_type: input.media_type } } : {}),
    ...(chunk ? { chunk: { index: chunk.index, count: chunk.count } } : {}),
    redacted: 'options, prompts, schemas, metadata, file names and passwords are not shown',
  };
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** `Authorization: Bearer <token>` or HTTP Basic with the token as password (browsers prompt for it). */
function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

export interface AdminBoardOptions {
  queues: JobQueues;
  /** Password of the board. Defaults to none (the operator keeps it on a private network). */
  token?: string | undefined;
}

/** Mounts Bull Board at `/admin/queues` with job payloads redacted, behind the admin token when one is set. */
export async function registerAdminBoard(app: FastifyInstance, options: AdminBoardOptions): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_BASE_PATH);
  createBullBoard({
    queues: Object.values(options.queues.queues).map((queue) => {
      const adapter = new BullMQAdapter(queue, { allowRetries: true, description: `gembatch ${queue.name} queue` });
      adapter.setFormatter('data', redactJobData);
      return adapter;
    }),
    serverAdapter,
  });
  const expected = options.token ? digest(options.token) : undefined;
  await app.register(async (admin) => {
    if (expected) {
      admin.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
        const token = presentedToken(request);
        if (token !== undefined && timingSafeEqual(digest(token), expected)) return;
        // Answered here rather than thrown: Bull Board's routes have an error handler of their own.
        return reply
          .code(401)
          .header('www-authenticate', 'Basic realm="gembatch admin", charset="UTF-8"')
          .send({ error: { code: 'GB_ERR_UNAUTHORIZED', message: 'authorization: the admin board needs the admin token' } });
      });
    }
    await admin.register(serverAdapter.registerPlugin(), { prefix: ADMIN_BASE_PATH });
  });
}
