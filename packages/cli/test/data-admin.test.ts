import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { findFreePort, redisTest, tempDir, type RedisTestContext } from '@gembatch/testing';
import { runAudit, runTenant } from '../src/commands/data-admin.ts';
import { runKeys } from '../src/commands/keys.ts';

const SERVER = fileURLToPath(new URL('../../../services/api/src/server.ts', import.meta.url));
const TOKEN = 'admin-token-for-cli-test-0123';

/** The real API process with an admin token, on loopback; stopped when the test ends. */
async function startApi(redis: RedisTestContext): Promise<string> {
  const dir = await tempDir('gembatch-cli-data-');
  onTestFinished(() => dir.cleanup());
  const port = await findFreePort('127.0.0.1');
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL: redis.url,
      GEMBATCH_REDIS_PREFIX: redis.prefix,
      GEMBATCH_DATA_DIR: dir.path,
      GEMBATCH_API_PORT: String(port),
      GEMBATCH_ADMIN_TOKEN: TOKEN,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = once(child, 'exit');
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => (log = (log + chunk.toString('utf8')).slice(-4_000)));
  // Registered after the Redis fixture, so the API's connections close before its leak check.
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const base = `http://127.0.0.1:${port}`;
  await vi.waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}: ${log}`);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    },
    { timeout: 60_000, interval: 100 },
  );
  return base;
}

type Command = (
  argv: string[],
  options: { out: Writable; err: Writable; env: Record<string, string> },
) => Promise<number>;

/** Runs a `gembatch` admin command in-process and captures what it prints. */
async function cli(
  run: Command,
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        append(chunk.toString('utf8'));
        callback();
      },
    });
  const code = await run(argv, { out: sink((t) => (out += t)), err: sink((t) => (err += t)), env });
  return { code, out, err };
}

describe('gembatch tenant purge and gembatch audit', () => {
  redisTest(
    "purges a tenant's files, jobs and keys through the real API and shows the audit trail",
    async ({ redis }) => {
      const api = await startApi(redis);
      const env = { GEMBATCH_API_URL: api, GEMBATCH_ADMIN_TOKEN: TOKEN };
      const key = (await cli(runKeys, ['create', 'acme'], env)).out.trim();
      const auth = { authorization: `Bearer ${key}` };
      const form = new FormData();
      form.append('file', new Blob(['a private letter']), 'letter.txt');
      form.append('purpose', 'user_data');
      const file = (await (await fetch(`${api}/v1/files`, { method: 'POST', body: form, headers: auth })).json()) as {
        id: string;
      };
      const job = (await (
        await fetch(`${api}/v1/jobs`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ text: 'hello there', task: 'summarize' }),
        })
      ).json()) as { id: string };

      const trail = await cli(runAudit, ['--tenant', 'acme', '--json'], env);
      expect(trail.code, trail.err).toBe(0);
      expect(
        (JSON.parse(trail.out) as Array<{ action: string; resource: string }>).map((e) => `${e.action} ${e.resource}`),
      ).toEqual([
        `job.submit ${job.id}`,
        `file.create ${file.id}`,
        expect.stringMatching(/^key\.create key_[0-9a-f]{16}$/),
      ]);
      const table = await cli(runAudit, ['--action', 'file.create'], env);
      expect(table.out).toMatch(new RegExp(`file\\.create\\s+acme\\s+key_[0-9a-f]{16}\\s+${file.id}`));

      expect((await cli(runTenant, ['purge', 'acme'], env)).code).toBe(2);
      const purged = await cli(runTenant, ['purge', 'acme', '--yes'], env);
      expect(purged).toMatchObject({ code: 0, out: 'purged acme: 1 jobs, 1 files, 1 keys, 0 schedules, 0 batches\n' });
      expect((await fetch(`${api}/v1/files`, { headers: auth })).status).toBe(401);
      expect(JSON.parse((await cli(runAudit, ['--action', 'tenant.purge', '--json'], env)).out)).toMatchObject([
        { tenant: 'acme', actor: 'admin' },
      ]);

      const noToken = await cli(runTenant, ['purge', 'acme', '--yes'], { GEMBATCH_API_URL: api });
      expect(noToken.code).toBe(2);
      expect((await cli(runAudit, [], { ...env, GEMBATCH_ADMIN_TOKEN: 'not-the-admin-token-000' })).err).toContain(
        'GB_ERR_UNAUTHORIZED',
      );
    },
  );

  it('prints usage for a missing or unknown sub-command', async () => {
    expect((await cli(runTenant, [], {})).code).toBe(2);
    expect((await cli(runTenant, ['erase', 'acme'], {})).code).toBe(2);
    expect((await cli(runAudit, ['--bogus'], {})).code).toBe(2);
  });
});
