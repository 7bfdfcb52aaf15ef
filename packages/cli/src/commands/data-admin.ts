import { parseArgs } from 'node:util';
import { AdminClient } from '../admin-client.ts';
import { ApiError } from '../api-client.ts';
import { errorMessage } from '@gembatch/contracts';

export const TENANT_USAGE = `gembatch tenant purge <tenant> --yes   delete every schedule, batch, job, file, blob (by reference) and stored API key of a tenant
  --api <url>            API base URL (default: $GEMBATCH_API_URL or http://127.0.0.1:8080)
  --admin-token <token>  the API's GEMBATCH_ADMIN_TOKEN (default: $GEMBATCH_ADMIN_TOKEN)
  --json                 print JSON instead of text`;

export const AUDIT_USAGE = `gembatch audit [--tenant t] [--action a] [--resource id] [--since t] [--until t] [--limit n] [--json]
  who submitted, read and deleted what, newest first (ids only); t is ISO 8601 or ms since epoch
  --api <url>, --admin-token <token> as for gembatch tenant`;

export interface RunAdminOptions {
  /** Where results go. Defaults to `process.stdout`. */
  out?: NodeJS.WritableStream;
  /** Where usage and errors go. Defaults to `process.stderr`. */
  err?: NodeJS.WritableStream;
  /** Environment read for `GEMBATCH_API_URL` and `GEMBATCH_ADMIN_TOKEN`. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

interface AuditEntry {
  id: string;
  at: string;
  action: string;
  tenant: string;
  actor: string;
  key_id?: string;
  resource: string;
}

const COMMON = { api: { type: 'string' }, 'admin-token': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } } as const;

function clientFor(values: { api?: string | undefined; 'admin-token'?: string | undefined }, env: Readonly<Record<string, string | undefined>>, err: NodeJS.WritableStream, command: string): AdminClient | undefined {
  const token = values['admin-token'] ?? env.GEMBATCH_ADMIN_TOKEN;
  if (!token) {
    err.write(`gembatch ${command}: needs the admin token (--admin-token or GEMBATCH_ADMIN_TOKEN, as set on the API)\n`);
    return undefined;
  }
  // A purge of a big tenant deletes jobs one by one: give it minutes, not the default 30 s.
  return new AdminClient({ baseUrl: values.api ?? env.GEMBATCH_API_URL ?? 'http://127.0.0.1:8080', token, timeoutMs: 30 * 60_000 });
}

function describeError(error: unknown): string {
  return error instanceof ApiError ? `${error.code}: ${error.message}` : errorMessage(error);
}

/** `gembatch tenant purge <tenant> --yes`: a thin client of `POST /admin/tenants/:tenant/purge`. Resolves to the exit code. */
export async function runTenant(argv: string[], options: RunAdminOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  const env = options.env ?? process.env;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON, yes: { type: 'boolean' } } });
  } catch (error) {
    err.write(`${(error as Error).message}\n${TENANT_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub, tenant, ...extra] = positionals;
  if (values.help || sub !== 'purge' || tenant === undefined || extra.length > 0) {
    err.write(`${TENANT_USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (!values.yes) {
    err.write(`gembatch tenant purge: this deletes all of ${tenant}'s schedules, batches, jobs, files and keys for good; add --yes to do it\n`);
    return 2;
  }
  const client = clientFor(values, env, err, 'tenant purge');
  if (!client) return 2;
  try {
    const report = await client.request<Record<string, number | string>>('POST', `/admin/tenants/${encodeURIComponent(tenant)}/purge`);
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
    err.write(`gembatch tenant purge: ${describeError(error)}\n`);
    return 1;
  }
}

/** `gembatch audit …`: a thin client of `GET /admin/audit`. Resolves to the exit code. */
export async function runAudit(argv: string[], options: RunAdminOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  const env = options.env ?? process.env;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: { ...COMMON, tenant: { type: 'string' }, action: { type: 'string' }, resource: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' } },
    });
  } catch (error) {
    err.write(`${(error as Error).message}\n${AUDIT_USAGE}\n`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    err.write(`${AUDIT_USAGE}\n`);
    return 0;
  }
  const client = clientFor(values, env, err, 'audit');
  if (!client) return 2;
  const query = new URLSearchParams();
  for (const name of ['tenant', 'action', 'resource', 'since', 'until', 'limit'] as const) {
    const value = values[name];
    if (value !== undefined) query.set(name, value);
  }
  try {
    const page = await client.request<{ data: AuditEntry[]; has_more: boolean }>('GET', `/admin/audit${query.size > 0 ? `?${query.toString()}` : ''}`);
    if (values.json) out.write(`${JSON.stringify(page.data)}\n`);
    else {
      out.write(`${'AT'.padEnd(24)} ${'ACTION'.padEnd(12)} ${'TENANT'.padEnd(16)} ${'ACTOR'.padEnd(28)} RESOURCE\n`);
      for (const entry of page.data) {
        const actor = entry.actor === 'tenant' && entry.key_id ? entry.key_id : entry.actor;
        out.write(`${entry.at.padEnd(24)} ${entry.action.padEnd(12)} ${entry.tenant.padEnd(16)} ${actor.padEnd(28)} ${entry.resource}\n`);
      }
      if (page.has_more) err.write('more entries: narrow with --since/--until or raise --limit\n');
    }
    return 0;
  } catch (error) {
    err.write(`gembatch audit: ${describeError(error)}\n`);
    return 1;
  }
}
