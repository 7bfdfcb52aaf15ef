import { mkdir, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { GembatchError } from '@gembatch/contracts';

/**
 * The operator-configured directory that schedule folders must live under. Every path a client
 * gives is resolved against it, symlinks included (realpath), and refused with
 * `GB_ERR_FOLDER_NOT_ALLOWED` when the result is not the root or inside it. Messages name the
 * client's own path, never the server's layout.
 */
export class FolderRoot {
  /** The root's real path (symlinks resolved). */
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  /** Resolves the root itself; throws when it does not exist or is not a directory (a start-up error). */
  static async open(root: string): Promise<FolderRoot> {
    const real = await realpath(resolve(root));
    if (!(await stat(real)).isDirectory()) throw new Error('not a directory');
    return new FolderRoot(real);
  }

  /** Whether `real` (already resolved) is the root or under it. */
  contains(real: string): boolean {
    const rel = relative(this.path, real);
    return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.startsWith(`..${sep}`));
  }

  /** An existing directory under the root, as a real path. Relative paths are taken from the root. */
  async existingFolder(path: string, field: string): Promise<string> {
    let real: string;
    try {
      real = await realpath(this.#lexical(path));
    } catch {
      throw new GembatchError('GB_ERR_FOLDER_NOT_ALLOWED', `${field}: no such folder under the schedule root`);
    }
    if (!this.contains(real))
      throw new GembatchError('GB_ERR_FOLDER_NOT_ALLOWED', `${field}: resolves outside the schedule root`);
    if (!(await stat(real)).isDirectory())
      throw new GembatchError('GB_ERR_FOLDER_NOT_ALLOWED', `${field}: not a folder`);
    return real;
  }

  /**
   * A directory under the root, created when missing. The nearest existing ancestor is resolved
   * first (a symlink there must not lead out), then the rest is created and checked again.
   */
  async folderToWrite(path: string, field: string): Promise<string> {
    const lexical = this.#lexical(path);
    let existing = lexical;
    const missing: string[] = [];
    for (;;) {
      try {
        existing = await realpath(existing);
        break;
      } catch {
        const parent = dirname(existing);
        if (parent === existing) throw new GembatchError('GB_ERR_FOLDER_NOT_ALLOWED', `${field}: cannot be resolved`);
        missing.unshift(existing.slice(parent.length + 1));
        existing = parent;
      }
    }
    if (!this.contains(existing))
      throw new GembatchError('GB_ERR_FOLDER_NOT_ALLOWED', `${field}: resolves outside the schedule root`);
    const target = join(existing, ...missing);
    await mkdir(target, { recursive: true });
    return this.existingFolder(target, field);
  }

  #lexical(path: string): string {
    return isAbsolute(path) ? resolve(path) : resolve(this.path, path);
  }
}
