import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FolderRoot } from './folder-root.ts';

/** A file found in a schedule's source folder. */
export interface ScannedFile {
  /** Path under the source folder, `/`-separated (what outputs are named after). */
  relative: string;
  /** Real path on disk. */
  path: string;
  sha256: string;
  bytes: number;
  /** Modification time (ms), for the hash cache. */
  mtimeMs: number;
}

/** Hashes known from earlier scans: the sha256 of `relative` if its size and mtime are unchanged. */
export type KnownHash = (relative: string, bytes: number, mtimeMs: number) => string | undefined;

/**
 * Lists the regular files under `folder` (recursively, in name order, skipping dot-files and
 * anything a symlink leads outside the root to), hashing each; a file whose size and mtime match
 * `known` is not read again. Stops after `maxFiles` files.
 */
export async function scanFolder(
  root: FolderRoot,
  folder: string,
  maxFiles: number,
  signal?: AbortSignal,
  known?: KnownHash,
): Promise<ScannedFile[]> {
  const found: ScannedFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => !e.name.startsWith('.'))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (found.length >= maxFiles) return;
      signal?.throwIfAborted();
      let path = join(dir, entry.name);
      if ((await lstat(path)).isSymbolicLink()) {
        const target = await realpath(path).catch(() => undefined);
        if (!target || !root.contains(target)) continue;
        path = target;
      }
      const info = await stat(path).catch(() => undefined);
      if (info?.isDirectory()) await walk(path);
      else if (info?.isFile()) {
        const rel = relative(folder, join(dir, entry.name)).split('\\').join('/');
        found.push({
          relative: rel,
          path,
          sha256: known?.(rel, info.size, info.mtimeMs) ?? (await sha256File(path)),
          bytes: info.size,
          mtimeMs: info.mtimeMs,
        });
      }
    }
  };
  await walk(folder);
  return found;
}

/** sha256 of a file's bytes, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}
