import { parseArgs } from 'node:util';
import { AdminClient } from '../admin-client.ts';
import { ApiError } from '../api-client.ts';
import { errorMessage } from '@gembatch/contracts';

export const KEYS_USAGE = `gembatch keys create <tenant> | list [--tenant <t>] | revoke <id>   manage API keys (stored hashed in Redis)
  --api <url>            API base URL (default: $GEMBATCH_API_URL or http://127.0.0.1:8080)
  --admin-token <token>  the API's GEMBATCH_ADMIN_TOKEN (default: $GEMBATCH_ADMIN_TOKEN)
  --json                 print JSON instead of text`;

export interface RunKeysOptions {
  /** Where results go. Defaults to `process.stdout`. */
  out?: NodeJS.WritableStream;
  /** Where usage and errors go. Defaults to `process.stderr`. */
  err?: NodeJS.WritableStream;
  /** Environment read for `GEMBATCH_API_URL` and `GEMBATCH_ADMIN_TOKEN`. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** `gembatch keys ...`: a thin client of `/admin/keys`. Resolves to the exit code. */
export async function runKeys(argv: string[], options: RunKeysOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  const env = options.env ?? process.env;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { api: { type: 'string' }, 'admin-token': { type: 'string' }, tenant: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } } });
  } catch (error) {
    err.write(`${(error as Error).message}\n${KEYS_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub, arg, ...extra] = positionals;
  const usable = (sub === 'create' || sub === 'revoke') ? arg !== undefined && extra.length === 0 : sub === 'list' && arg === undefined;
  if (values.help || !usable) {
    err.write(`${KEYS_USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const token = values['admin-token'] ?? env.GEMBATCH_ADMIN_TOKEN;
  if (!token) {
    err.write('gembatch keys: needs the admin token (--admin-token or GEMBATCH_ADMIN_TOKEN, as set on the API)\n');
    return 2;
  }
  const client = new AdminClient({ baseUrl: values.api ?? env.GEMBATCH_API_URL ?? 'http://127.0.0.1:8080', token });
  try {
    if (sub === 'create') {
      const created = await client.createKey(arg ?? '');
      if (values.json) out.write(`${JSON.stringify(created)}\n`);
      else out.write(`${created.key}\n`);
      err.write(`created ${created.id} for tenant ${created.tenant}; the key above is shown once (only its sha256 is stored)\n`);
    } else if (sub === 'list') {
      const keys = await client.listKeys(values.tenant);
      if (values.json) out.write(`${JSON.stringify(keys)}\n`);
      else {
        out.write(`${'ID'.padEnd(21)} ${'TENANT'.padEnd(24)} CREATED\n`);
        for (const key of keys) out.write(`${key.id.padEnd(21)} ${key.tenant.padEnd(24)} ${key.created_at}\n`);
      }
    } else {
      const revoked = await client.revokeKey(arg ?? '');
      if (values.json) out.write(`${JSON.stringify(revoked)}\n`);
      else out.write(`revoked ${revoked.id} (tenant ${revoked.tenant})\n`);
    }
    return 0;
  } catch (error) {
    const detail = error instanceof ApiError ? `${error.code}: ${error.message}` : errorMessage(error);
    err.write(`gembatch keys ${sub}: ${detail}\n`);
    return 1;
  }
}
