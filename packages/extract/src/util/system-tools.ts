import { findOnPath } from '@gembatch/config';

const found = new Map<string, string | null>();

/**
 * The absolute path of an executable on `PATH` (e.g. `pdftotext`, `tesseract`), or `null` when it
 * is not installed. Optional tools make extraction faster or better; their absence is never an
 * error by itself. Results are cached for the life of the process.
 */
export function findSystemTool(name: string): string | null {
  const cached = found.get(name);
  if (cached !== undefined) return cached;
  const result = findOnPath(name);
  found.set(name, result);
  return result;
}
