import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage } from '@gembatch/contracts';
import { AdminClient } from '../admin-client.ts';
import { ApiError } from '../api-client.ts';

/** Streams and environment of the admin commands (`keys`, `tenant`, `audit`), so tests can capture them. */
export interface RunAdminOptions {
  /** Where results go. Defaults to `process.stdout`. */
  out?: NodeJS.WritableStream;
  /** Where usage and errors go. Defaults to `process.stderr`. */
  err?: NodeJS.WritableStream;
  /** Environment read for `GEMBATCH_API_URL` and `GEMBATCH_ADMIN_TOKEN`. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The flags every admin command takes. */
export const ADMIN_OPTIONS = {
  api: { type: 'string' },
  'admin-token': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

/** `RunAdminOptions` with their defaults filled in. */
export function adminStreams(options: RunAdminOptions): {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  env: Readonly<Record<string, string | undefined>>;
} {
  return { out: options.out ?? process.stdout, err: options.err ?? process.stderr, env: options.env ?? process.env };
}

/** The parsed flags, or `undefined` after writing the problem and the usage to `err` (exit code 2). */
export function parseAdminArgs<T extends ParseArgsConfig>(
  config: T,
  usage: string,
  err: NodeJS.WritableStream,
): ReturnType<typeof parseArgs<T>> | undefined {
  try {
    return parseArgs(config);
  } catch (error) {
    err.write(`${errorMessage(error)}\n${usage}\n`);
    return undefined;
  }
}

/**
 * The admin client the flags (or `GEMBATCH_API_URL` / `GEMBATCH_ADMIN_TOKEN`) point at, or
 * `undefined` after saying on `err` that the token is missing (exit code 2).
 *
 * @param timeoutMs Per request. Defaults to the client's own.
 */
export function adminClientFor(
  values: { api?: string | undefined; 'admin-token'?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
  err: NodeJS.WritableStream,
  command: string,
  timeoutMs?: number,
): AdminClient | undefined {
  const token = values['admin-token'] ?? env.GEMBATCH_ADMIN_TOKEN;
  if (!token) {
    err.write(
      `gembatch ${command}: needs the admin token (--admin-token or GEMBATCH_ADMIN_TOKEN, as set on the API)\n`,
    );
    return undefined;
  }
  return new AdminClient({
    baseUrl: values.api ?? env.GEMBATCH_API_URL ?? 'http://127.0.0.1:8080',
    token,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

/** An API error as `CODE: message`, anything else by its message. */
export function describeAdminError(error: unknown): string {
  return error instanceof ApiError ? `${error.code}: ${error.message}` : errorMessage(error);
}
