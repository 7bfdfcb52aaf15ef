import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';

const CHILD = fileURLToPath(new URL('./fixtures/drain-child.ts', import.meta.url));

/** Starts the fixture process; resolves once its signal handlers are installed. */
async function start(mode: 'ok' | 'fail' | 'hang', timeoutMs = 30_000) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, String(timeoutMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const seen = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (output.includes(text)) resolve();
      };
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        check();
      });
      void exited.then(() => reject(new Error(`exited before printing ${JSON.stringify(text)}: ${output}`)));
      check();
    });
  const ready = seen('ready');
  await ready;
  return { child, exited, seen, output: () => output };
}

// Each process is ended by its own drain: the test waits on its exit, bounded by the test timeout.
describe('drainOnSignals', { timeout: 20_000 }, () => {
  it('exits 0 once close resolves', async () => {
    const service = await start('ok');
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(service.output()).toMatch(/"msg":"draining".*\n.*"msg":"stopped"/);
  });

  it('exits 1 when close rejects', async () => {
    const service = await start('fail');
    service.child.kill('SIGINT');
    expect(await service.exited).toBe(1);
    expect(service.output()).toContain('shutdown failed');
  });

  it('exits 1 when close runs past the timeout', async () => {
    const service = await start('hang', 100);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(1);
    expect(service.output()).toContain('drain timed out');
  });

  it('a second signal exits 1 at once', async () => {
    const service = await start('hang');
    const draining = service.seen('draining');
    service.child.kill('SIGTERM');
    await draining;
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(1);
    expect(service.output()).toContain('second signal');
  });
});
