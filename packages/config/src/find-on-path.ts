import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * The absolute path of an executable on `env.PATH` (e.g. `pdftotext`, `redis-server`), or `null`
 * when none of its directories has one. The one PATH lookup of the repository: optional tools,
 * the embedded stack's prerequisites and the test fixtures all ask here.
 *
 * @param env Environment whose `PATH` is searched. Defaults to `process.env`.
 */
export function findOnPath(
  name: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; keep looking.
    }
  }
  return null;
}
