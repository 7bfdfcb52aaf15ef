import { describe, expect, onTestFinished, test, vi } from 'vitest';
import { ensureTestModel, startRedis } from '@gembatch/testing';
import { startWorker } from './worker-harness.ts';

/** Long enough for every connection to fail several reconnect attempts (they back off up to 2 s). */
const OUTAGE_MS = 6_000;

describe('Redis outage', () => {
  test('a worker rides out a Redis outage: no unhandled error dumps, a line per connection when it drops and when it is back, and it takes jobs again', async () => {
    // A server of its own: the test stops it.
    const server = await startRedis({ mode: 'spawn' });
    onTestFinished(() => server.close());
    const dumps: string[] = [];
    const consoleError = console.error;
    // ioredis prints `[ioredis] Unhandled error event: <stack>` with console.error when a connection has no error listener.
    console.error = (...args: unknown[]) => {
      dumps.push(args.map(String).join(' '));
    };
    onTestFinished(() => {
      console.error = consoleError;
    });
    const worker = await startWorker(
      { url: server.url, prefix: 'gbt-outage' },
      { GEMBATCH_MODEL: await ensureTestModel('tiny'), GEMBATCH_SEQUENCES: '2', GEMBATCH_CONTEXT_PER_SEQUENCE: '1024' },
    );
    // The test's own producer connection is not under test.
    worker.producer.redis.on('error', () => undefined);
    expect((await worker.settle(await worker.submitText('Before the outage.'))).status).toBe('completed');

    const before = worker.logLines.length;
    await server.restart({ hard: true, downMs: OUTAGE_MS });
    expect((await worker.settle(await worker.submitText('After the outage.'), 60_000)).status).toBe('completed');
    const outageLines = () =>
      worker.logLines
        .slice(before)
        .map((line) => JSON.parse(line) as { level: string; msg: string; connection?: string; queue?: string });
    const connections = ['gembatch-worker', 'gembatch-worker-bullmq', 'gembatch-worker-cancel'];
    // Every connection says when it is back (the stats and cancel connections may reconnect after the job ran).
    await vi.waitFor(
      () =>
        expect(
          outageLines()
            .filter((line) => line.msg === 'redis connection restored')
            .map((line) => line.connection)
            .sort(),
        ).toEqual(connections),
      { timeout: 15_000, interval: 50 },
    );

    expect(dumps.filter((dump) => dump.includes('Unhandled error event'))).toEqual([]);
    const lines = outageLines();
    expect(
      lines
        .filter((line) => line.msg === 'redis connection lost; reconnecting')
        .map((line) => line.connection)
        .sort(),
    ).toEqual(connections);
    expect(
      lines
        .filter((line) => line.msg === 'queue connection lost; reconnecting')
        .map((line) => line.queue)
        .sort(),
    ).toEqual(['extract', 'generate']);
    // One complaint per connection, queue, heartbeat and job-metrics send (the first job's metrics go out up to
    // 200 ms after it, so possibly into the outage) for the whole outage, however many reconnect attempts it took.
    const complaints = lines.filter((line) => line.level === 'warn' || line.level === 'error');
    const perSource = new Map<string, number>();
    for (const line of complaints)
      perSource.set(
        `${line.msg} ${line.connection ?? line.queue ?? ''}`,
        (perSource.get(`${line.msg} ${line.connection ?? line.queue ?? ''}`) ?? 0) + 1,
      );
    expect(
      [...perSource.values()].every((count) => count === 1),
      JSON.stringify([...perSource]),
    ).toBe(true);
    expect(complaints.length).toBeLessThanOrEqual(7);
  }, 120_000);
});
