import { randomUUID } from 'node:crypto';

/** `job_` + 32 hex chars: unguessable, URL-safe, sortable enough for humans. */
export function newJobId(): string {
  return `job_${randomUUID().replaceAll('-', '')}`;
}

/** `file_` + 32 hex chars. Files are per tenant; their bytes are shared by sha256 in the blob store. */
export function newFileId(): string {
  return `file_${randomUUID().replaceAll('-', '')}`;
}

/** `key_` + 16 hex chars: names a stored API key in listings and revocations (it is not the key). */
export function newApiKeyId(): string {
  return `key_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
}

export const API_KEY_ID_PATTERN = /^key_[0-9a-f]{16}$/;
export const JOB_ID_PATTERN = /^job_[0-9a-f]{32}$/;
export const FILE_ID_PATTERN = /^file_[0-9a-f]{32}$/;
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** `batch_` + 32 hex chars. */
export function newBatchId(): string {
  return `batch_${randomUUID().replaceAll('-', '')}`;
}

export const BATCH_ID_PATTERN = /^batch_[0-9a-f]{32}$/;
