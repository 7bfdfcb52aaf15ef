import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { FILE_PURPOSES, GembatchError, type FilePurpose, type FileRecord } from '@gembatch/contracts';
import type { FileStore, StagedFile } from '@gembatch/storage';
import type { AuditLog } from '../audit-log.ts';
import type { HttpMetrics } from '../plugins/http-metrics.ts';
import { ErrorResponse, FileDeleted, FileList, FileListQuery, FileObject, IdParams } from './api-schemas.ts';

/** FileRecord's caps on what the client names and claims. */
const MAX_FILENAME_CHARS = 1024;
const MAX_DECLARED_TYPE_CHARS = 255;

export interface FileRouteDeps {
  files: FileStore;
  audit: AuditLog;
  metrics: HttpMetrics;
  /** Largest accepted upload in bytes. */
  maxUploadBytes: number;
  /** A tenant's stored-bytes quota (0: none). */
  quotaBytes: number;
}

/** The public shape of a file record, OpenAI's `FileObject` plus our `sha256` (tenant and declared type stay internal). */
function toFileObject(record: FileRecord): FileObject {
  return {
    id: record.id,
    object: 'file',
    bytes: record.bytes,
    created_at: record.created_at,
    filename: record.filename,
    purpose: record.purpose,
    status: 'processed',
    ...(record.expires_at !== undefined ? { expires_at: record.expires_at } : {}),
    sha256: record.sha256,
  };
}

/** A client's file name without any directory part (`C:\\scans\\a.pdf` → `a.pdf`), bounded. */
function cleanFilename(name: string | undefined): string {
  const base = basename((name ?? '').replaceAll('\\', '/')).trim();
  return (base || 'upload').slice(0, MAX_FILENAME_CHARS);
}

function parsePurpose(value: string | undefined): FilePurpose | undefined {
  if (value === undefined) return undefined;
  if ((FILE_PURPOSES as readonly string[]).includes(value)) return value as FilePurpose;
  throw new GembatchError('GB_ERR_BAD_REQUEST', `purpose: must be one of ${FILE_PURPOSES.join(', ')}`);
}

/** OpenAI's bounds on `expires_after[seconds]`: one hour to 30 days. */
const MIN_EXPIRES_AFTER_SECONDS = 3600;
const MAX_EXPIRES_AFTER_SECONDS = 30 * 24 * 60 * 60;

/** OpenAI's `expires_after[anchor]=created_at` + `expires_after[seconds]=N` form fields, as seconds; none sent → `undefined`. */
function parseExpiresAfter(fields: Record<string, string>): number | undefined {
  if (Object.keys(fields).length === 0) return undefined;
  const anchor = fields['expires_after[anchor]'];
  if (anchor !== undefined && anchor !== 'created_at')
    throw new GembatchError('GB_ERR_BAD_REQUEST', 'expires_after.anchor: must be created_at');
  const raw = fields['expires_after[seconds]'] ?? '';
  const seconds = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(seconds >= MIN_EXPIRES_AFTER_SECONDS && seconds <= MAX_EXPIRES_AFTER_SECONDS)) {
    throw new GembatchError(
      'GB_ERR_BAD_REQUEST',
      `expires_after.seconds: must be an integer from ${MIN_EXPIRES_AFTER_SECONDS} to ${MAX_EXPIRES_AFTER_SECONDS}`,
    );
  }
  return seconds;
}

/**
 * The Files API, in OpenAI's shapes: upload (multipart part `file` plus an optional `purpose`,
 * streamed into the blob store), list, read, content and delete.
 */
export function registerFileRoutes(app: FastifyInstance, deps: FileRouteDeps): void {
  app.post(
    '/v1/files',
    {
      schema: {
        tags: ['files'],
        summary:
          'Upload a file (multipart/form-data: part `file`, field `purpose`). Streamed to the blob store; 413 above the size limit, 429 past the stored-bytes quota.',
        consumes: ['multipart/form-data'],
        body: {
          type: 'object',
          properties: {
            file: { type: 'string', format: 'binary' },
            purpose: { type: 'string', enum: [...FILE_PURPOSES] },
          },
          required: ['file'],
        },
        response: { 201: FileObject, 400: ErrorResponse, 413: ErrorResponse, 429: ErrorResponse },
      },
    },
    async (request, reply) => {
      let staged: StagedFile | undefined;
      let filename: string | undefined;
      let declaredType: string | undefined;
      let purpose: string | undefined;
      const expiresAfter: Record<string, string> = {};
      try {
        // Fields may come before or after the file (the OpenAI SDKs send them in the caller's order).
        for await (const part of request.parts()) {
          if (part.type === 'field') {
            if (part.fieldname === 'purpose') purpose = String(part.value);
            else if (part.fieldname.startsWith('expires_after[')) expiresAfter[part.fieldname] = String(part.value);
            continue;
          }
          if (part.fieldname !== 'file' || staged) {
            part.file.resume();
            throw new GembatchError(
              'GB_ERR_BAD_REQUEST',
              `file: send the upload in one part named file (got a part named ${JSON.stringify(part.fieldname.slice(0, 100))})`,
            );
          }
          // Refused before reading a byte when the tenant is already at its quota.
          if (deps.quotaBytes > 0) await assertBelowQuota(deps, request.tenant);
          staged = await deps.files.stage(part.file, { maxBytes: deps.maxUploadBytes }).catch((error: unknown) => {
            if (error instanceof GembatchError && error.code === 'GB_ERR_PAYLOAD_TOO_LARGE')
              throw new GembatchError(
                'GB_ERR_PAYLOAD_TOO_LARGE',
                `file: the upload is larger than the limit of ${deps.maxUploadBytes} bytes`,
              );
            throw error;
          });
          // Cannot happen while multipart's own limit is one byte above ours, but never store a cut file silently.
          if (part.file.truncated)
            throw new GembatchError(
              'GB_ERR_PAYLOAD_TOO_LARGE',
              `file: the upload is larger than the limit of ${deps.maxUploadBytes} bytes`,
            );
          filename = cleanFilename(part.filename);
          declaredType = part.mimetype ? part.mimetype.slice(0, MAX_DECLARED_TYPE_CHARS) : undefined;
        }
        if (!staged) throw new GembatchError('GB_ERR_BAD_REQUEST', 'file: the multipart body has no file part');
      } catch (error) {
        if (staged) await deps.files.discard(staged);
        throw error;
      }
      let parsedPurpose: FilePurpose | undefined;
      let expiresInSeconds: number | undefined;
      try {
        parsedPurpose = parsePurpose(purpose);
        expiresInSeconds = parseExpiresAfter(expiresAfter);
      } catch (error) {
        await deps.files.discard(staged);
        throw error;
      }
      const record = await deps.files.commit(staged, {
        tenant: request.tenant,
        filename: filename ?? 'upload',
        ...(parsedPurpose ? { purpose: parsedPurpose } : {}),
        ...(declaredType ? { declaredType } : {}),
        ...(expiresInSeconds !== undefined ? { expiresInSeconds } : {}),
        quotaBytes: deps.quotaBytes,
      });
      deps.metrics.uploadBytes.inc(record.bytes);
      request.log.info(
        { fileId: record.id, bytes: record.bytes, sha256: record.sha256, purpose: record.purpose },
        'file stored',
      );
      await deps.audit.record(request, 'file.create', record.id);
      return reply.code(201).send(toFileObject(record));
    },
  );

  app.get(
    '/v1/files',
    {
      schema: {
        tags: ['files'],
        summary: "This tenant's files (OpenAI list shape; `after` is a file id).",
        querystring: FileListQuery,
        response: { 200: FileList, 400: ErrorResponse },
      },
    },
    async (request) => {
      const query = request.query as z.output<typeof FileListQuery>;
      const page = await deps.files.list(request.tenant, query);
      const data = page.data.map(toFileObject);
      return {
        object: 'list' as const,
        data,
        has_more: page.has_more,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
      };
    },
  );

  app.get(
    '/v1/files/:id',
    {
      schema: {
        tags: ['files'],
        summary: 'A file uploaded by this tenant.',
        params: IdParams,
        response: { 200: FileObject, 404: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const record = await findOrThrow(deps, request.tenant, id);
      await deps.audit.record(request, 'file.read', id);
      return toFileObject(record);
    },
  );

  app.get(
    '/v1/files/:id/content',
    {
      schema: {
        tags: ['files'],
        summary: "The file's bytes, streamed as stored.",
        params: IdParams,
        response: { 200: { type: 'string', format: 'binary' }, 404: ErrorResponse },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const record = await findOrThrow(deps, request.tenant, id);
      const stream = await deps.files.open(record).catch((error: unknown) => {
        // The record exists, so missing bytes are our fault, not the caller's.
        throw error instanceof GembatchError && error.code === 'GB_ERR_FILE_NOT_FOUND'
          ? new GembatchError('GB_ERR_INTERNAL', `the bytes of file ${id} are missing from the blob store`, {
              cause: error,
            })
          : error;
      });
      await deps.audit.record(request, 'file.content', id);
      return reply.type('application/octet-stream').header('content-length', record.bytes).send(stream);
    },
  );

  app.delete(
    '/v1/files/:id',
    {
      schema: {
        tags: ['files'],
        summary: 'Delete a file; its bytes go once no other file references the same content.',
        params: IdParams,
        response: { 200: FileDeleted, 404: ErrorResponse },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const deleted = await deps.files.delete(request.tenant, id);
      if (!deleted) throw new GembatchError('GB_ERR_NOT_FOUND', `no file ${id.slice(0, 100)}`);
      request.log.info({ fileId: id }, 'file deleted');
      await deps.audit.record(request, 'file.delete', id);
      return { id, object: 'file' as const, deleted: true as const };
    },
  );
}

async function findOrThrow(deps: FileRouteDeps, tenant: string, id: string): Promise<FileRecord> {
  const record = await deps.files.find(tenant, id);
  if (!record) throw new GembatchError('GB_ERR_NOT_FOUND', `no file ${id.slice(0, 100)}`);
  return record;
}

async function assertBelowQuota(deps: FileRouteDeps, tenant: string): Promise<void> {
  const used = await deps.files.storedBytes(tenant);
  if (used >= deps.quotaBytes)
    throw new GembatchError(
      'GB_ERR_QUOTA_EXCEEDED',
      `file: this tenant stores ${used} bytes, its quota is ${deps.quotaBytes}; delete files first`,
      { details: { quotaBytes: deps.quotaBytes } },
    );
}
