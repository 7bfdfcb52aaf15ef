import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { redisTest, tempDir } from '@gembatch/testing';

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url));

/** Runs `server.ts` as the embedded stack and the container do: a child process with its own env. */
function startServer(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const parse = (line: string): Record<string, unknown> | undefined => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  /** Resolves with the first log entry whose `msg` is `msg`; rejects if the process exits first. */
  const logged = (msg: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const find = () => lines.map(parse).find((entry) => entry?.msg === msg);
      const found = find();
      if (found) return resolve(found);
      const stream = createInterface({ input: child.stdout });
      stream.on('line', (line) => {
        if (parse(line)?.msg === msg) {
          stream.close();
          resolve(parse(line) as Record<string, unknown>);
        }
      });
      void exited.then((code) => reject(new Error(`server exited (${code}) before logging "${msg}": ${stderr.join('')}`)));
    });
  return { child, exited, logged, stderr, lines };
}

describe('server.ts', () => {
  it('exits 1 naming every bad variable, without echoing secrets', async () => {
    const server = startServer({ GEMBATCH_API_PORT: 'eighty', GEMBATCH_MAX_UPLOAD_BYTES: 'big', GEMBATCH_API_KEYS: 'no-tenant-here-super-secret' });
    expect(await server.exited).toBe(1);
    const stderr = server.stderr.join('');
    expect(stderr).toContain('GEMBATCH_API_PORT');
    expect(stderr).toContain('GEMBATCH_MAX_UPLOAD_BYTES');
    expect(stderr).toContain('GEMBATCH_API_KEYS');
    expect(stderr).not.toContain('super-secret');
  });

  redisTest('listens, answers, and drains on SIGTERM', async ({ redis }) => {
    const dir = await tempDir('gembatch-api-server-');
    onTestFinished(() => dir.cleanup());
    const server = startServer({ REDIS_URL: redis.url, GEMBATCH_REDIS_PREFIX: redis.prefix, GEMBATCH_DATA_DIR: dir.path, GEMBATCH_API_PORT: '0', GEMBATCH_API_HOST: '0.0.0.0' });
    const listening = await server.logged('api listening');
    const address = (listening.address as string).replace('0.0.0.0', '127.0.0.1');
    // Bound beyond loopback without API keys: the operator is warned.
    expect(server.lines.some((line) => line.includes('"level":"warn"') && line.includes('without GEMBATCH_API_KEYS'))).toBe(true);
    expect((await (await fetch(`${address}/healthz`)).json()) as unknown).toEqual({ status: 'ok' });
    expect((await fetch(`${address}/readyz`)).status).toBe(503);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
  });
});
