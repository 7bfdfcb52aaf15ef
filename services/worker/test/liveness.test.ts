import { spawnSync } from 'node:child_process';
import { describe, expect, vi } from 'vitest';
import { ensureTestModel, findFreePort, redisTest } from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

describe('worker /livez (issue 9)', () => {
  redisTest(
    'a real worker node answers /livez 200, 503 within 10 s while its event loop is blocked (default 5 s threshold), then 200 again',
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '1',
        GEMBATCH_LIVEZ_PORT: String(await findFreePort()),
      });
      const url = worker.node.livezUrl as string;
      expect((await fetch(url)).status).toBe(200);

      // spawnSync freezes this process (and the node running in it) while the child polls /livez.
      const poller = `const started = Date.now(); (async () => { for (;;) { const r = await fetch(process.argv[1]).catch(() => undefined); const ms = Date.now() - started; if (r && r.status === 503) { console.log(JSON.stringify({ ms, body: await r.json() })); return; } if (ms > 12000) { console.log(JSON.stringify({ ms, body: null })); return; } await new Promise((res) => setTimeout(res, 250)); } })();`;
      const child = spawnSync(process.execPath, ['-e', poller, url], { encoding: 'utf8', timeout: 30_000 });
      const seen = JSON.parse(child.stdout.trim()) as {
        ms: number;
        body: { status: string; event_loop_stalled_ms: number } | null;
      };
      expect(seen.body?.status).toBe('stalled');
      expect(seen.ms).toBeLessThan(10_000);
      expect(seen.body?.event_loop_stalled_ms).toBeGreaterThanOrEqual(5_000);

      await vi.waitFor(async () => expect((await fetch(url)).status).toBe(200), { timeout: 10_000, interval: 50 });
    },
    60_000,
  );
});
