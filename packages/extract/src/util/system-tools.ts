import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const found = new Map<string, string | null>();

/**
 * The absolute path of an executable on `PATH` (e.g. `pdftotext`, `tesseract`), or `null` when it
 * is not installed. Optional tools make extraction faster or better; their absence is never an
 * error by itself. Results are cached for the life of the process.
 */
export function findSystemTool(name: string): string | null {
  const cached = found.get(name);
  if (cached !== undefined) return cached;
  let result: string | null = null;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      result = candidate;
      break;
    } catch {
      // Not in this directory; keep looking.
    }
  }
  found.set(name, result);
  return result;
}
