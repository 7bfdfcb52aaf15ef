import { spawnSync } from 'node:child_process';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Registry } from 'prom-client';
import { startEventLoopWatchdog } from '../src/index.ts';

/**
 * Polls `url` from another process until it answers 503 or `limitMs` pass; prints every answer as
 * JSON lines `{ms, status, body}`. Run with spawnSync, which freezes this process's event loop for
 * as long as the poller runs — exactly what a hostile regex or a synchronous decode does.
 */
const POLLER = `
const [url, limitMs] = [process.argv[1], Number(process.argv[2])];
const started = Date.now();
(async () => {
  for (;;) {
    const ms = Date.now() - started;
    let status = 0, body = '';
    try { const r = await fetch(url, { signal: AbortSignal.timeout(1000) }); status = r.status; body = await r.text(); } catch (e) { body = String(e); }
    console.log(JSON.stringify({ ms, status, body }));
    if (status === 503 || ms > limitMs) return;
    await new Promise((r) => setTimeout(r, 200));
  }
})();
`;

interface Answer {
  ms: number;
  status: number;
  body: string;
}

function pollWhileBlocked(url: string, limitMs: number): Answer[] {
  const child = spawnSync(process.execPath, ['-e', POLLER, url, String(limitMs)], {
    encoding: 'utf8',
    timeout: limitMs + 10_000,
  });
  return child.stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Answer);
}

describe('EventLoopWatchdog', () => {
  it('serves /livez from its own thread: 200 while the loop ticks, 503 with the stall within 10 s of a block, 200 again after; the lag histogram records the block', async () => {
    const registry = new Registry();
    const watchdog = await startEventLoopWatchdog({ registry, livezPort: 0, stallThresholdMs: 2_000 });
    onTestFinished(() => watchdog.close());
    const url = watchdog.livezUrl as string;

    const healthy = await fetch(url);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({ status: 'ok', threshold_ms: 2_000 });

    // The main loop is frozen from here until the poller exits.
    const answers = pollWhileBlocked(url, 10_000);
    const stalled = answers.find((a) => a.status === 503);
    expect(stalled, JSON.stringify(answers)).toBeDefined();
    expect(stalled?.ms).toBeLessThan(10_000);
    const body = JSON.parse(stalled?.body ?? '{}') as { status: string; event_loop_stalled_ms: number };
    expect(body.status).toBe('stalled');
    expect(body.event_loop_stalled_ms).toBeGreaterThanOrEqual(2_000);
    // Every answer before it was 200: the thread answered throughout the block.
    expect(answers.slice(0, -1).every((a) => a.status === 200)).toBe(true);

    await vi.waitFor(async () => expect((await fetch(url)).status).toBe(200), { timeout: 10_000, interval: 50 });
    const metric = await registry.getSingleMetricAsString('gembatch_event_loop_lag_seconds');
    const count = Number(/gembatch_event_loop_lag_seconds_count (\d+)/.exec(metric)?.[1]);
    const underOneSecond = Number(/gembatch_event_loop_lag_seconds_bucket\{le="1"\} (\d+)/.exec(metric)?.[1]);
    // At least one sample (the block) lies above 1 s.
    expect(count - underOneSecond).toBeGreaterThanOrEqual(1);
  }, 40_000);

  it('adds its histogram to a later registry once, and close() is idempotent and stops the thread', async () => {
    const watchdog = await startEventLoopWatchdog({ livezPort: 0 });
    const registry = new Registry();
    watchdog.register(registry);
    watchdog.register(registry);
    expect(await registry.metrics()).toContain('# TYPE gembatch_event_loop_lag_seconds histogram');
    const url = watchdog.livezUrl as string;
    expect((await fetch(`${url.replace('/livez', '/other')}`)).status).toBe(404);
    await Promise.all([watchdog.close(), watchdog.close()]);
    await expect(fetch(url)).rejects.toThrow();
  });

  it('refuses a taken port with GB_ERR_CONFIG', async () => {
    const first = await startEventLoopWatchdog({ livezPort: 0 });
    onTestFinished(() => first.close());
    const port = Number(new URL(first.livezUrl as string).port);
    await expect(startEventLoopWatchdog({ livezPort: port })).rejects.toMatchObject({ code: 'GB_ERR_CONFIG' });
  });

  it('fails /livez when active work makes no progress for the engine threshold while the loop ticks, and recovers when it advances or goes idle', async () => {
    const watchdog = await startEventLoopWatchdog({ livezPort: 0, stallThresholdMs: 5_000 });
    onTestFinished(() => watchdog.close());
    const url = watchdog.livezUrl as string;
    const engine = { active: 0, decodeCalls: 0 };
    watchdog.watchProgress({
      sample: () => ({ active: engine.active, progress: engine.decodeCalls }),
      stallThresholdMs: 1_500,
    });
    const livez = async () => {
      const response = await fetch(url);
      return {
        status: response.status,
        body: (await response.json()) as { status: string; engine_stalled_ms?: number; engine_threshold_ms?: number },
      };
    };
    expect(await livez()).toMatchObject({ status: 200, body: { status: 'ok', engine_threshold_ms: 1_500 } });

    // Two sequences in hand, no decode step: stuck.
    engine.active = 2;
    const stuck = await vi.waitFor(
      async () => {
        const answer = await livez();
        expect(answer.status).toBe(503);
        return answer;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(stuck.body.status).toBe('engine_stalled');
    expect(stuck.body.engine_stalled_ms).toBeGreaterThanOrEqual(1_500);

    // Decoding again: healthy within a sample.
    const ticking = setInterval(() => engine.decodeCalls++, 50);
    onTestFinished(() => clearInterval(ticking));
    await vi.waitFor(async () => expect((await livez()).status).toBe(200), { timeout: 5_000, interval: 100 });
    clearInterval(ticking);

    // Idle with no progress is not stuck: the engine clock is reset on every idle sample.
    engine.active = 0;
    const idle = await livez();
    expect(idle.status).toBe(200);
    expect(idle.body.engine_stalled_ms).toBeLessThan(1_500);
  });
});
