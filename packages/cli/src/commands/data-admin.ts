import {
  ADMIN_OPTIONS,
  adminClientFor,
  adminStreams,
  describeAdminError,
  parseAdminArgs,
  type RunAdminOptions,
} from './admin-command.ts';

export const TENANT_USAGE = `gembatch tenant purge <tenant> --yes   delete every schedule, batch, job, file, blob (by reference) and stored API key of a tenant
  --api <url>            API base URL (default: $GEMBATCH_API_URL or http://127.0.0.1:8080)
  --admin-token <token>  the API's GEMBATCH_ADMIN_TOKEN (default: $GEMBATCH_ADMIN_TOKEN)
  --json                 print JSON instead of text`;

export const AUDIT_USAGE = `gembatch audit [--tenant t] [--action a] [--resource id] [--since t] [--until t] [--limit n] [--json]
  who submitted, read and deleted what, newest first (ids only); t is ISO 8601 or ms since epoch
  --api <url>, --admin-token <token> as for gembatch tenant`;

interface AuditEntry {
  id: string;
  at: string;
  action: string;
  tenant: string;
  actor: string;
  key_id?: string;
  resource: string;
}

// Why 30 min: a purge of a big tenant deletes jobs one by one; a filtered audit query may scan 50,000 entries.
const ADMIN_REQUEST_TIMEOUT_MS = 30 * 60_000;

/** `gembatch tenant purge <tenant> --yes`: a thin client of `POST /admin/tenants/:tenant/purge`. Resolves to the exit code. */
export async function runTenant(argv: string[], options: RunAdminOptions = {}): Promise<number> {
  const { out, err, env } = adminStreams(options);
  const parsed = parseAdminArgs(
    { args: argv, allowPositionals: true, options: { ...ADMIN_OPTIONS, yes: { type: 'boolean' } } },
    TENANT_USAGE,
    err,
  );
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  const [sub, tenant, ...extra] = positionals;
  if (values.help || sub !== 'purge' || tenant === undefined || extra.length > 0) {
    err.write(`${TENANT_USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (!values.yes) {
    err.write(
      `gembatch tenant purge: this deletes all of ${tenant}'s schedules, batches, jobs, files and keys for good; add --yes to do it\n`,
    );
    return 2;
  }
  const client = adminClientFor(values, env, err, 'tenant purge', ADMIN_REQUEST_TIMEOUT_MS);
  if (!client) return 2;
  try {
    const report = await client.request<Record<string, number | string>>(
      'POST',
      `/admin/tenants/${encodeURIComponent(tenant)}/purge`,
    );
    if (values.json) out.write(`${JSON.stringify(report)}\n`);
    else {
      const counts = Object.entries(report)
        .filter(([name]) => name !== 'tenant')
        .map(([name, count]) => `${count} ${name}`)
        .join(', ');
      out.write(`purged ${tenant}: ${counts}\n`);
    }
    return 0;
  } catch (error) {
    err.write(`gembatch tenant purge: ${describeAdminError(error)}\n`);
    return 1;
  }
}

/** `gembatch audit …`: a thin client of `GET /admin/audit`. Resolves to the exit code. */
export async function runAudit(argv: string[], options: RunAdminOptions = {}): Promise<number> {
  const { out, err, env } = adminStreams(options);
  const parsed = parseAdminArgs(
    {
      args: argv,
      allowPositionals: false,
      options: {
        ...ADMIN_OPTIONS,
        tenant: { type: 'string' },
        action: { type: 'string' },
        resource: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        limit: { type: 'string' },
      },
    },
    AUDIT_USAGE,
    err,
  );
  if (!parsed) return 2;
  const { values } = parsed;
  if (values.help) {
    err.write(`${AUDIT_USAGE}\n`);
    return 0;
  }
  const client = adminClientFor(values, env, err, 'audit', ADMIN_REQUEST_TIMEOUT_MS);
  if (!client) return 2;
  const query = new URLSearchParams();
  for (const name of ['tenant', 'action', 'resource', 'since', 'until', 'limit'] as const) {
    const value = values[name];
    if (value !== undefined) query.set(name, value);
  }
  try {
    const page = await client.request<{ data: AuditEntry[]; has_more: boolean }>(
      'GET',
      `/admin/audit${query.size > 0 ? `?${query.toString()}` : ''}`,
    );
    if (values.json) out.write(`${JSON.stringify(page.data)}\n`);
    else {
      out.write(`${'AT'.padEnd(24)} ${'ACTION'.padEnd(12)} ${'TENANT'.padEnd(16)} ${'ACTOR'.padEnd(28)} RESOURCE\n`);
      for (const entry of page.data) {
        const actor = entry.actor === 'tenant' && entry.key_id ? entry.key_id : entry.actor;
        out.write(
          `${entry.at.padEnd(24)} ${entry.action.padEnd(12)} ${entry.tenant.padEnd(16)} ${actor.padEnd(28)} ${entry.resource}\n`,
        );
      }
      if (page.has_more) err.write('more entries: narrow with --since/--until or raise --limit\n');
    }
    return 0;
  } catch (error) {
    err.write(`gembatch audit: ${describeAdminError(error)}\n`);
    return 1;
  }
}
