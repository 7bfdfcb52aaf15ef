import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { followWorkerEvents } from '../src/worker-events.ts';

const CHILD = fileURLToPath(new URL('./fixtures/worker-events-child.ts', import.meta.url));

describe('worker events (gembatch up)', () => {
  it('shows download progress and the model decision from the typed IPC events only: no log line, whatever its wording, and no malformed message shows', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let status = '';
    followWorkerEvents(
      child,
      { write: (chunk: string) => ((status += chunk), true) } as unknown as NodeJS.WritableStream,
      'worker-2',
    );
    // Log lines go to a pipe the CLI writes to a file and never reads.
    child.stdout?.resume();
    expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0);
    expect(status).toBe(
      'worker-2: downloading model: 50%\nmodel      worker-2: /models/m.gguf (Q8_0): fits 8 sequences\n',
    );
  });
});
