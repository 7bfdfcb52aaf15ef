/**
 * A JSON field as BullMQ or gembatch stored it in Redis (a job's data or return value), or
 * `undefined` when there is none or it does not parse: readers then fall back or refuse, never throw.
 */
export function parseStoredJson(stored: string | null | undefined): unknown {
  if (stored == null) return undefined;
  try {
    return JSON.parse(stored);
  } catch {
    return undefined;
  }
}
