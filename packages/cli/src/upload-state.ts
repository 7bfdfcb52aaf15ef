import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ErrorBody } from '@gembatch/contracts';
import { ApiError, type ApiClient } from './api-client.ts';

/**
 * What this machine has uploaded, per API server: file sha256 → file id. Kept in a local JSON file
 * so that a command interrupted with Ctrl-C and run again uploads only what is missing.
 */
interface StateFile {
  version: 1;
  servers: Record<string, Record<string, string>>;
  /** Per server, per batch input hash: how many batches of that input have been seen through. */
  generations?: Record<string, Record<string, number>>;
}

/** Default place of the upload state, beside the embedded stack's data. */
export const DEFAULT_UPLOAD_STATE = '.gembatch/cli-uploads.json';

export interface UploadInputsOptions {
  client: ApiClient;
  /** The API base URL (the state is kept per server). */
  server: string;
  /** Files to upload, in order. */
  files: readonly string[];
  /** Where the state lives. Defaults to `.gembatch/cli-uploads.json`. */
  statePath?: string;
  /** Uploads in flight at once. Defaults to `4`. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after each file (uploaded or found in the state). */
  onFile?(index: number, reused: boolean): void;
}

/** File ids in input order; a file the server refused (4xx: too large, ...) has `null` and its error. */
export interface UploadedInputs {
  ids: Array<string | null>;
  errors: Map<number, ErrorBody>;
}

/**
 * Uploads files with bounded parallelism, skipping those whose sha256 this machine uploaded to
 * this server before (and the server still knows). The state is saved after every upload
 * (atomically), so an interruption loses at most the uploads in flight.
 */
export async function uploadInputs(options: UploadInputsOptions): Promise<UploadedInputs> {
  const statePath = options.statePath ?? DEFAULT_UPLOAD_STATE;
  const state = await readState(statePath);
  const known = (state.servers[options.server] ??= {});
  const ids: Array<string | null> = Array.from({ length: options.files.length }, () => null);
  const errors = new Map<number, ErrorBody>();
  let saving: Promise<void> = Promise.resolve();
  const save = () => {
    saving = saving.then(() => writeState(statePath, state));
    return saving;
  };
  let next = 0;
  const worker = async () => {
    while (next < options.files.length) {
      options.signal?.throwIfAborted();
      const index = next++;
      const path = options.files[index] as string;
      const sha256 = await sha256File(path);
      const cached = known[sha256];
      if (cached && (await options.client.findFile(cached))) {
        ids[index] = cached;
        options.onFile?.(index, true);
        continue;
      }
      let uploaded: { id: string };
      try {
        uploaded = await options.client.uploadFile(path, 'user_data');
      } catch (error) {
        // A refusal of this file (4xx) fails this input only; anything else stops the command.
        if (!(error instanceof ApiError) || error.status >= 500) throw error;
        errors.set(index, { code: error.code as ErrorBody['code'], message: error.message });
        options.onFile?.(index, false);
        continue;
      }
      ids[index] = uploaded.id;
      known[sha256] = uploaded.id;
      await save();
      options.onFile?.(index, false);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, options.files.length) }, worker));
  await saving;
  return { ids, errors };
}

/**
 * Which generation of a batch input this command is on: the same number until a batch of it has been
 * seen through (`nextGeneration`), so an interrupted command finds its batch again (the number is part of
 * the Idempotency-Key) and a finished one starts a new batch next time.
 */
export async function batchGeneration(statePath: string, server: string, inputHash: string): Promise<number> {
  return (await readState(statePath)).generations?.[server]?.[inputHash] ?? 0;
}

/** Marks the current generation of a batch input as seen through. */
export async function nextGeneration(statePath: string, server: string, inputHash: string): Promise<void> {
  const state = await readState(statePath);
  const generations = ((state.generations ??= {})[server] ??= {});
  generations[inputHash] = (generations[inputHash] ?? 0) + 1;
  await writeState(statePath, state);
}

async function readState(path: string): Promise<StateFile> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as StateFile;
    if (parsed.version === 1 && typeof parsed.servers === 'object') return parsed;
  } catch {
    // Missing or unreadable: start over (uploads are idempotent by content on the server).
  }
  return { version: 1, servers: {} };
}

async function writeState(path: string, state: StateFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(state));
  await rename(temp, path);
}

/** sha256 of a file, streamed. */
async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}
