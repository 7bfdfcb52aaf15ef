import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { findFreePort, redisTest, tempDir } from '@gembatch/testing';

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url));

/** Runs `server.ts` as the embedded stack and the container do: a child process with its own env. */
function startServer(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
      void exited.then((code) =>
        reject(new Error(`server exited (${code}) before logging "${msg}": ${stderr.join('')}`)),
      );
    });
  return { child, exited, logged, stderr, lines };
}

describe('server.ts', () => {
  it('exits 1 naming every bad variable, without echoing secrets', async () => {
    const server = startServer({
      GEMBATCH_API_PORT: 'eighty',
      GEMBATCH_MAX_UPLOAD_BYTES: 'big',
      GEMBATCH_API_KEYS: 'no-tenant-here-super-secret',
    });
    expect(await server.exited).toBe(1);
    const stderr = server.stderr.join('');
    expect(stderr).toContain('GEMBATCH_API_PORT');
    expect(stderr).toContain('GEMBATCH_MAX_UPLOAD_BYTES');
    expect(stderr).toContain('GEMBATCH_API_KEYS');
    expect(stderr).not.toContain('super-secret');
  });

  it('refuses to listen beyond loopback with auth off, naming the variables that fix it', async () => {
    const server = startServer({ GEMBATCH_API_PORT: '0', GEMBATCH_API_HOST: '0.0.0.0' });
    expect(await server.exited).toBe(1);
    const stderr = server.stderr.join('');
    for (const name of ['GEMBATCH_API_HOST', 'GEMBATCH_API_KEYS', 'GEMBATCH_ADMIN_TOKEN', 'GEMBATCH_ALLOW_NO_AUTH'])
      expect(stderr).toContain(name);
    expect(server.lines.some((line) => line.includes('api listening'))).toBe(false);
  });

  redisTest(
    'listens (beyond loopback only with GEMBATCH_ALLOW_NO_AUTH=true, said loudly), serves metrics on their own port, and drains on SIGTERM',
    async ({ redis }) => {
      const dir = await tempDir('gembatch-api-server-');
      onTestFinished(() => dir.cleanup());
      const metricsPort = await findFreePort('127.0.0.1');
      const server = startServer({
        REDIS_URL: redis.url,
        GEMBATCH_REDIS_PREFIX: redis.prefix,
        GEMBATCH_DATA_DIR: dir.path,
        GEMBATCH_API_PORT: '0',
        GEMBATCH_API_HOST: '0.0.0.0',
        GEMBATCH_ALLOW_NO_AUTH: 'true',
        GEMBATCH_API_METRICS_PORT: String(metricsPort),
      });
      const listening = await server.logged('api listening');
      const address = (listening.address as string).replace('0.0.0.0', '127.0.0.1');
      expect(
        server.lines.some((line) => line.includes('"level":"warn"') && line.includes('GEMBATCH_ALLOW_NO_AUTH=true')),
      ).toBe(true);
      expect(await (await fetch(`${address}/healthz`)).json()).toEqual({ status: 'ok' });
      expect((await fetch(`${address}/readyz`)).status).toBe(503);
      expect(listening.metrics).toBe(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).toContain(
        'gembatch_api_http_requests_total{method="GET",route="/healthz",status="200"} 1',
      );

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(server.lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
    },
  );
});
