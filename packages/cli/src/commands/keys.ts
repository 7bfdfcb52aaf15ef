import {
  ADMIN_OPTIONS,
  adminClientFor,
  adminStreams,
  describeAdminError,
  parseAdminArgs,
  type RunAdminOptions,
} from './admin-command.ts';

export const KEYS_USAGE = `gembatch keys create <tenant> | list [--tenant <t>] | revoke <id>   manage API keys (stored hashed in Redis)
  --api <url>            API base URL (default: $GEMBATCH_API_URL or http://127.0.0.1:8080)
  --admin-token <token>  the API's GEMBATCH_ADMIN_TOKEN (default: $GEMBATCH_ADMIN_TOKEN)
  --json                 print JSON instead of text`;

/** `gembatch keys ...`: a thin client of `/admin/keys`. Resolves to the exit code. */
export async function runKeys(argv: string[], options: RunAdminOptions = {}): Promise<number> {
  const { out, err, env } = adminStreams(options);
  const parsed = parseAdminArgs(
    { args: argv, allowPositionals: true, options: { ...ADMIN_OPTIONS, tenant: { type: 'string' } } },
    KEYS_USAGE,
    err,
  );
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  const [sub, arg, ...extra] = positionals;
  const usable =
    sub === 'create' || sub === 'revoke'
      ? arg !== undefined && extra.length === 0
      : sub === 'list' && arg === undefined;
  if (values.help || !usable) {
    err.write(`${KEYS_USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const client = adminClientFor(values, env, err, 'keys');
  if (!client) return 2;
  try {
    if (sub === 'create') {
      const created = await client.createKey(arg ?? '');
      if (values.json) out.write(`${JSON.stringify(created)}\n`);
      else out.write(`${created.key}\n`);
      err.write(
        `created ${created.id} for tenant ${created.tenant}; the key above is shown once (only its sha256 is stored)\n`,
      );
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
    err.write(`gembatch keys ${sub}: ${describeAdminError(error)}\n`);
    return 1;
  }
}
