import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { findFreePort, redisTest, tempDir, type RedisTestContext } from '@gembatch/testing';
import { runKeys } from '../src/commands/keys.ts';

const SERVER = fileURLToPath(new URL('../../../services/api/src/server.ts', import.meta.url));
const TOKEN = 'admin-token-for-cli-test-0123';

/** The real API process with an admin token, on loopback; stopped when the test ends. */
async function startApi(redis: RedisTestContext): Promise<string> {
  const dir = await tempDir('gembatch-cli-keys-');
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

/** Runs `gembatch keys ...` in-process and captures what it prints. */
async function keys(argv: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        append(chunk.toString('utf8'));
        callback();
      },
    });
  const code = await runKeys(argv, { out: sink((t) => (out += t)), err: sink((t) => (err += t)), env });
  return { code, out, err };
}

describe('gembatch keys', () => {
  redisTest(
    'creates a key (printed once), lists it without the key, and revokes it for the next request',
    async ({ redis }) => {
      const api = await startApi(redis);
      const env = { GEMBATCH_API_URL: api, GEMBATCH_ADMIN_TOKEN: TOKEN };

      const created = await keys(['create', 'acme'], env);
      expect(created.code, created.err).toBe(0);
      const key = created.out.trim();
      expect(key).toMatch(/^gb_[A-Za-z0-9_-]{43}$/);
      const id = /created (key_[0-9a-f]{16}) for tenant acme/.exec(created.err)?.[1];
      expect(id).toBeDefined();
      expect((await fetch(`${api}/v1/jobs`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);

      const listed = await keys(['list'], env);
      expect(listed.code).toBe(0);
      expect(listed.out).toMatch(new RegExp(`^${id}\\s+acme\\s+\\d{4}-`, 'm'));
      expect(listed.out).not.toContain(key);
      const json = await keys(['list', '--json', '--tenant', 'acme'], env);
      expect(JSON.parse(json.out)).toEqual([{ id, tenant: 'acme', created_at: expect.any(String) }]);

      const revoked = await keys(['revoke', id ?? ''], env);
      expect(revoked).toMatchObject({ code: 0, out: `revoked ${id} (tenant acme)\n` });
      expect((await fetch(`${api}/v1/jobs`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
      expect(JSON.parse((await keys(['list', '--json'], env)).out)).toEqual([]);

      const again = await keys(['revoke', id ?? ''], env);
      expect(again.code).toBe(1);
      expect(again.err).toContain('GB_ERR_NOT_FOUND');
      const wrongToken = await keys(['list'], { ...env, GEMBATCH_ADMIN_TOKEN: 'not-the-admin-token-000' });
      expect(wrongToken.code).toBe(1);
      expect(wrongToken.err).toContain('GB_ERR_UNAUTHORIZED');
    },
  );

  it('says what is missing: a sub-command, its argument, or the admin token', async () => {
    expect((await keys([], {})).code).toBe(2);
    expect((await keys(['create'], { GEMBATCH_ADMIN_TOKEN: TOKEN })).code).toBe(2);
    expect((await keys(['list', 'extra'], { GEMBATCH_ADMIN_TOKEN: TOKEN })).code).toBe(2);
    const noToken = await keys(['list'], {});
    expect(noToken.code).toBe(2);
    expect(noToken.err).toContain('GEMBATCH_ADMIN_TOKEN');
  });
});
