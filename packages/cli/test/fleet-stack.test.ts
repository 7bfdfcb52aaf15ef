import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { GEMMA4_12B_CATALOG } from '@gembatch/inference';
import {
  findFamily,
  findFreePort,
  parsePrometheusFamilies,
  redisTest,
  tempDir,
  writeStandInModels,
} from '@gembatch/testing';
import { runTop } from '../src/commands/top.ts';
import { EmbeddedStack } from '../src/embedded-stack.ts';

/** The worker's default `/metrics` and `/livez` ports, which two stacks on one host used to fight over. */
const WORKER_PORTS = [9465, 9466];

/** Holds `port` on loopback for the test (or finds it already taken by something else: same effect). */
async function occupy(port: number): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('gembatch up --workers 2 --simulate-vram 12GiB,32GiB', () => {
  redisTest(
    'each worker plans with its own memory and picks its quantization; the exporter and top show both; ports 9465/9466 in use do not matter',
    async ({ redis }) => {
      const dir = await tempDir();
      const dataDir = join(dir.path, 'data');
      await writeStandInModels(
        join(dataDir, 'models'),
        GEMMA4_12B_CATALOG.entries.map((e) => e.file),
      );
      // Before the fix every embedded worker listened on 9465: with it taken (another stack on this
      // host), the worker exited with EADDRINUSE and the stack never became ready.
      const blockers = await Promise.all(WORKER_PORTS.map(occupy));
      const stack = new EmbeddedStack({
        redisUrl: redis.url,
        apiPort: await findFreePort(),
        exporterPort: await findFreePort(),
        dataDir,
        simulateVram: ['12GiB', '32GiB'],
        sequences: 1,
        env: { GEMBATCH_REDIS_PREFIX: redis.prefix, GEMBATCH_THREADS: '1', GEMBATCH_CONTEXT_PER_SEQUENCE: '1024' },
        status: { write: () => true } as unknown as NodeJS.WritableStream,
        readyTimeoutMs: 120_000,
      });
      try {
        const urls = await stack.start();
        const families = parsePrometheusFamilies(await (await fetch(urls.exporter)).text());
        const info = findFamily(families, 'gembatch_node_info');
        const samples = info && info.type !== 'histogram' && info.type !== 'summary' ? info.metrics : [];
        expect(samples.map((s) => s.labels.quant).sort()).toEqual(['BF16', 'Q4_0_QAT']);
        expect(new Set(samples.map((s) => s.labels.node)).size).toBe(2);

        let printed = '';
        const out = { write: (chunk: string) => ((printed += chunk), true) } as unknown as NodeJS.WritableStream;
        expect(await runTop(['--once', '--url', urls.exporter], out)).toBe(0);
        expect(printed).toContain('Q4_0_QAT');
        expect(printed).toContain('BF16');
      } finally {
        await stack.stop(10_000);
        for (const blocker of blockers) blocker?.close();
        await dir.cleanup();
      }
    },
    150_000,
  );
});
