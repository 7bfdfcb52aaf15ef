import { newFileId } from '@gembatch/contracts';
import type { BatchFileRef, BatchFiles } from '@gembatch/batches';
import type { FileRecordStore } from './file-record-store.ts';

/** The Files API as batches see it: input files to read, and generated files (inputs, outputs) to record. */
export class ApiBatchFiles implements BatchFiles {
  readonly #files: FileRecordStore;

  constructor(files: FileRecordStore) {
    this.#files = files;
  }

  async find(tenant: string, fileId: string): Promise<BatchFileRef | undefined> {
    const record = await this.#files.find(tenant, fileId);
    return record ? { id: record.id, sha256: record.sha256, bytes: record.bytes, filename: record.filename } : undefined;
  }

  async create(tenant: string, file: { sha256: string; bytes: number; filename: string; purpose: string }): Promise<string> {
    const id = newFileId();
    await this.#files.save({ id, tenant, sha256: file.sha256, bytes: file.bytes, filename: file.filename, created_at: new Date().toISOString() });
    return id;
  }
}
