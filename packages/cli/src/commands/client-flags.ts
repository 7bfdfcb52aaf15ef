import { ApiClient } from '../api-client.ts';

/** `--api` and `--api-key`, shared by the client commands. */
export const CLIENT_OPTIONS = {
  api: { type: 'string' },
  'api-key': { type: 'string' },
} as const;

/** The API client the flags (or `GEMBATCH_API_URL` / `GEMBATCH_API_KEY`) point at, and its base URL. */
export function clientFromFlags(values: { api?: string; 'api-key'?: string }): { client: ApiClient; server: string } {
  const server = values.api ?? process.env.GEMBATCH_API_URL ?? 'http://127.0.0.1:8080';
  const apiKey = values['api-key'] ?? process.env.GEMBATCH_API_KEY;
  return { client: new ApiClient({ baseUrl: server, ...(apiKey ? { apiKey } : {}) }), server };
}

/** `key=value` pairs into a record (`--metadata team=legal`). */
export function pairs(values: readonly string[] | undefined, flag: string): Record<string, string> | undefined {
  if (!values || values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const pair of values) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`${flag} ${pair}: expected key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/**
 * Task options from repeated `--option key=value` flags: each value as JSON when it parses
 * (`n=3`, `flag=true`, `tags=["a"]`), else as the plain string.
 */
export function optionFlags(values: readonly string[] | undefined): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(pairs(values, '--option') ?? {}).map(([key, raw]) => [key, jsonOrString(raw)]),
  );
}

function jsonOrString(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}
