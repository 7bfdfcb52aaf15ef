import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GembatchError, SHA256_PATTERN, errorMessage } from '@gembatch/contracts';
import { hfHeaders, hfResolveUrl, type HfAccess, type HfFile } from './hf-source.ts';
import { downloadFile, hashFile, type DownloadedFile, type DownloadProgress } from './model-download.ts';

/** What the lock remembers of a downloaded model file (trust on first use). */
export interface ModelLockEntry {
  /** Hugging Face repository (`owner/name`). */
  repo: string;
  /** Path of the file in the repository. */
  file: string;
  /** Commit the file was downloaded from (40 hex), or the revision asked for when the server named no commit. */
  commit: string;
  sha256: string;
  size: number;
}

/** The lock file: one entry per local model file name. Operators can commit it. */
export interface ModelLock {
  version: 1;
  files: Record<string, ModelLockEntry>;
}

/** Pin state of a model file: catalog pin, lock entry, or neither. */
export type PinState = 'pinned' | 'locked' | 'unpinned';

/** File name of the lock in the models directory unless `GEMBATCH_MODEL_LOCK` names another path. */
export const MODEL_LOCK_FILE = 'models.lock.json';

/** The lock path: the one given, else `<modelsDir>/models.lock.json`. */
export function modelLockPath(modelsDir: string, given?: string): string {
  return given !== undefined && given.trim() !== '' ? given : path.join(modelsDir, MODEL_LOCK_FILE);
}

/** Reads the lock; a missing file is an empty lock, an unreadable one a `GB_ERR_CONFIG`. */
export async function readModelLock(lockPath: string): Promise<ModelLock> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, files: {} };
    throw new GembatchError('GB_ERR_CONFIG', `model lock ${lockPath} could not be read: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  try {
    const parsed = JSON.parse(text) as Partial<ModelLock>;
    if (parsed.version !== 1 || typeof parsed.files !== 'object' || parsed.files === null)
      throw new Error('expected {"version":1,"files":{...}}');
    return { version: 1, files: parsed.files };
  } catch (error) {
    throw new GembatchError('GB_ERR_CONFIG', `model lock ${lockPath} is malformed: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

/** Adds or replaces the entry of one local file name (written to a temporary file, then renamed). */
export async function recordInModelLock(lockPath: string, name: string, entry: ModelLockEntry): Promise<void> {
  const lock = await readModelLock(lockPath);
  // An unchanged entry is not written: a lock mounted read-only (a committed ConfigMap) keeps working.
  if (JSON.stringify(lock.files[name]) === JSON.stringify(entry)) return;
  lock.files[name] = entry;
  const temporary = `${lockPath}.${process.pid}.tmp`;
  try {
    await mkdir(path.dirname(lockPath), { recursive: true });
    await writeFile(temporary, `${JSON.stringify(lock, null, 2)}\n`);
    await rename(temporary, lockPath);
  } catch (error) {
    throw new GembatchError('GB_ERR_CONFIG', `model lock ${lockPath} could not be written: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

interface HashStamp {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256: string;
}

/** Remembers a sha256 just computed for a file (as it was downloaded), so its first load does not hash it again. */
async function stampFileSha256(file: string, sha256: string): Promise<void> {
  const now = await stat(file);
  await writeFile(
    `${file}.hashstamp.json`,
    JSON.stringify({ size: now.size, mtimeMs: now.mtimeMs, ctimeMs: now.ctimeMs, sha256 } satisfies HashStamp),
  ).catch(() => undefined);
}

/**
 * sha256 of a file, computed once and remembered in `<file>.hashstamp.json` with its size, mtime and
 * ctime: a file changed in any way (even to the same size) is hashed again.
 */
export async function fileSha256(file: string): Promise<{ sha256: string; size: number }> {
  const before = await stat(file);
  const stampPath = `${file}.hashstamp.json`;
  const stamp = await readFile(stampPath, 'utf8')
    .then((t) => JSON.parse(t) as HashStamp)
    .catch(() => undefined);
  if (
    stamp &&
    stamp.size === before.size &&
    stamp.mtimeMs === before.mtimeMs &&
    stamp.ctimeMs === before.ctimeMs &&
    SHA256_PATTERN.test(stamp.sha256)
  )
    return { sha256: stamp.sha256, size: stamp.size };
  const hash = createHash('sha256');
  await hashFile(file, hash);
  const sha256 = hash.digest('hex');
  const after = await stat(file);
  // A file written while it was hashed is not stamped: the next call hashes it again.
  if (after.size === before.size && after.mtimeMs === before.mtimeMs) {
    await writeFile(
      stampPath,
      JSON.stringify({ size: after.size, mtimeMs: after.mtimeMs, ctimeMs: after.ctimeMs, sha256 } satisfies HashStamp),
    ).catch(() => undefined);
  }
  return { sha256, size: before.size };
}

function mismatch(name: string, lockPath: string, actual: string, expected: string, what: string): GembatchError {
  return new GembatchError(
    'GB_ERR_MODEL_CHECKSUM',
    `${name}: ${what} has sha256 ${actual}, the model lock ${lockPath} records ${expected}; delete the file to download it again, or its lock entry to trust a new version`,
  );
}

/**
 * Checks a local model file against its lock entry (keyed by file name), if it has one: a file that
 * hashes otherwise fails with `GB_ERR_MODEL_CHECKSUM` (not retryable) naming both hashes. Resolves
 * to whether the file is locked.
 */
export async function verifyLockedFile(file: string, lockPath: string): Promise<boolean> {
  const name = path.basename(file);
  const entry = (await readModelLock(lockPath)).files[name];
  if (!entry) return false;
  const { sha256 } = await fileSha256(file);
  if (sha256 !== entry.sha256.toLowerCase())
    throw mismatch(name, lockPath, sha256, entry.sha256.toLowerCase(), 'the cached file');
  return true;
}

export interface DownloadLockedOptions extends HfAccess {
  file: HfFile;
  destination: string;
  lockPath: string;
  /** Catalog pins; they take precedence over the lock. */
  pin?: { sha256?: string; revision?: string };
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

/**
 * Downloads a Hugging Face file under the model lock. With a lock entry for the same repository
 * file, it is fetched from the locked commit and must have the locked sha256; without one, the
 * revision is resolved to a commit (`X-Repo-Commit`), the bytes come from that commit, and the
 * commit, sha256 and size are recorded. A catalog pin overrides both. A file already on disk with
 * a lock entry is only verified against it.
 */
export async function downloadLocked(options: DownloadLockedOptions): Promise<DownloadedFile> {
  const { file, destination, lockPath, pin } = options;
  const name = path.basename(destination);
  const locked = (await readModelLock(lockPath)).files[name];
  const usable = locked && locked.repo === file.repo && locked.file === file.file ? locked : undefined;
  const expected = pin?.sha256 ?? usable?.sha256;
  const existing = await stat(destination)
    .then((s) => s.size)
    .catch(() => 0);
  if (
    existing > 0 &&
    usable &&
    (pin?.sha256 === undefined || pin.sha256.toLowerCase() === usable.sha256.toLowerCase())
  ) {
    await verifyLockedFile(destination, lockPath);
    return { path: destination, bytes: existing, sha256: usable.sha256, resumed: false, cached: true };
  }
  const source: HfFile = { ...file, revision: pin?.revision ?? usable?.commit ?? file.revision };
  const access: HfAccess = {
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.token ? { token: options.token } : {}),
  };
  let done: DownloadedFile;
  try {
    done = await downloadFile({
      url: hfResolveUrl(source, access),
      urlAtCommit: (commit) => hfResolveUrl({ ...source, revision: commit }, access),
      destination,
      headers: hfHeaders(access),
      ...(expected ? { expectedSha256: expected } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (
      error instanceof GembatchError &&
      error.code === 'GB_ERR_MODEL_CHECKSUM' &&
      usable &&
      pin?.sha256 === undefined
    ) {
      throw new GembatchError(
        'GB_ERR_MODEL_CHECKSUM',
        `${error.message} (locked in ${lockPath} at commit ${usable.commit})`,
        { cause: error },
      );
    }
    throw error;
  }
  const actual = done.cached ? (await fileSha256(destination)).sha256 : done.sha256;
  if (expected !== undefined && actual !== expected.toLowerCase())
    throw mismatch(name, lockPath, actual, expected.toLowerCase(), 'the cached file');
  if (!done.cached) await stampFileSha256(destination, actual);
  if (!done.cached || !usable) {
    await recordInModelLock(lockPath, name, {
      repo: file.repo,
      file: file.file,
      commit: done.commit ?? usable?.commit ?? source.revision,
      sha256: actual,
      size: done.bytes,
    });
  }
  return { ...done, sha256: actual };
}

/** The pin state of a catalog entry's local file. */
export function pinStateOf(entry: { sha256?: string }, name: string, lock: ModelLock): PinState {
  if (entry.sha256) return 'pinned';
  return lock.files[name] ? 'locked' : 'unpinned';
}
