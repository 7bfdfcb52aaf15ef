import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { GembatchError, newFileId, type FileRecord } from '@gembatch/contracts';
import type { BlobStore } from '@gembatch/storage';
import type { FileRecordStore } from '../file-record-store.ts';
import type { HttpMetrics } from '../plugins/http-metrics.ts';
import { ErrorResponse, FileObject, IdParams } from './api-schemas.ts';

/** FileRecord's caps on what the client names and claims. */
const MAX_FILENAME_CHARS = 1024;
const MAX_DECLARED_TYPE_CHARS = 255;

export interface FileRouteDeps {
  blobStore: BlobStore;
  files: FileRecordStore;
  metrics: HttpMetrics;
  /** Largest accepted upload in bytes. */
  maxUploadBytes: number;
}

/** The public shape of a file record (tenant and declared type stay internal). */
export function toFileObject(record: FileRecord): FileObject {
  return { id: record.id, object: 'file', bytes: record.bytes, filename: record.filename, sha256: record.sha256, created_at: record.created_at };
}

/** A client's file name without any directory part (`C:\\scans\\a.pdf` → `a.pdf`), bounded. */
function cleanFilename(name: string | undefined): string {
  const base = basename((name ?? '').replaceAll('\\', '/')).trim();
  return (base || 'upload').slice(0, MAX_FILENAME_CHARS);
}

/** `POST /v1/files` (multipart part `file`, streamed into the blob store) and `GET /v1/files/:id`. */
export function registerFileRoutes(app: FastifyInstance, deps: FileRouteDeps): void {
  app.post(
    '/v1/files',
    {
      schema: {
        tags: ['files'],
        summary: 'Upload a file (multipart/form-data, part `file`). Streamed to the blob store; 413 above the size limit.',
        consumes: ['multipart/form-data'],
        body: { type: 'object', properties: { file: { type: 'string', format: 'binary' } }, required: ['file'] },
        response: { 201: FileObject, 400: ErrorResponse, 413: ErrorResponse },
      },
    },
    async (request, reply) => {
      const part = await request.file();
      if (!part) throw new GembatchError('GB_ERR_BAD_REQUEST', 'file: the multipart body has no file part');
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw new GembatchError('GB_ERR_BAD_REQUEST', `file: send the upload in a part named file (got a part named ${JSON.stringify(part.fieldname.slice(0, 100))})`);
      }
      const stored = await deps.blobStore.put(part.file, { maxBytes: deps.maxUploadBytes }).catch((error: unknown) => {
        if (error instanceof GembatchError && error.code === 'GB_ERR_PAYLOAD_TOO_LARGE') throw new GembatchError('GB_ERR_PAYLOAD_TOO_LARGE', `file: the upload is larger than the limit of ${deps.maxUploadBytes} bytes`);
        throw error;
      });
      // Cannot happen while multipart's own limit is one byte above ours, but never store a cut file silently.
      if (part.file.truncated) throw new GembatchError('GB_ERR_PAYLOAD_TOO_LARGE', `file: the upload is larger than the limit of ${deps.maxUploadBytes} bytes`);
      const record: FileRecord = {
        id: newFileId(),
        tenant: request.tenant,
        sha256: stored.sha256,
        bytes: stored.bytes,
        filename: cleanFilename(part.filename),
        ...(part.mimetype ? { declared_type: part.mimetype.slice(0, MAX_DECLARED_TYPE_CHARS) } : {}),
        created_at: new Date().toISOString(),
      };
      await deps.files.save(record);
      deps.metrics.uploadBytes.inc(stored.bytes);
      request.log.info({ fileId: record.id, bytes: record.bytes, sha256: record.sha256 }, 'file stored');
      return reply.code(201).send(toFileObject(record));
    },
  );

  app.get('/v1/files/:id', { schema: { tags: ['files'], summary: 'A file uploaded by this tenant.', params: IdParams, response: { 200: FileObject, 404: ErrorResponse } } }, async (request) => {
    const { id } = request.params as { id: string };
    const record = await deps.files.find(request.tenant, id);
    if (!record) throw new GembatchError('GB_ERR_NOT_FOUND', `no file ${id}`);
    return toFileObject(record);
  });
}
