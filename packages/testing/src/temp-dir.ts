import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory and a way to remove it. */
export interface TempDir {
  path: string;
  /** Removes the directory and everything in it. Idempotent. */
  cleanup(): Promise<void>;
}

/**
 * Creates a fresh directory under the OS temp dir (`gembatch-test-XXXXXX`). Pair it with
 * `onTestFinished(() => dir.cleanup())`.
 *
 * @param prefix Start of the directory's name. Defaults to `gembatch-test-`.
 */
export async function tempDir(prefix = 'gembatch-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
