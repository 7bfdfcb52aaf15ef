import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, onTestFinished, vi } from 'vitest';
import { ensureTestModel, findFreePort, redisTest, serveModelHub, tempDir, writeTextPdf } from '@gembatch/testing';
import { ApiClient } from '../src/api-client.ts';
import { EmbeddedStack } from '../src/embedded-stack.ts';

/** Words that appear only in the uploaded document: none may reach any log line of any service. */
const SECRET_WORDS = ['Marigold', 'Thistlewood', 'Xanthippe'];
const PAGES = [
  'Page one. Marigold Thistlewood leases the bakery on Mill Street from the landlord for three years.',
  'Page two. The rent is four hundred dollars, paid on the first day of every month to Xanthippe.',
  'Page three. Either party may end the lease with sixty days of written notice.',
];

describe('embedded stack end to end', () => {
  redisTest(
    'upload a 3-page PDF, summarize it through Redis and a worker running a real GGUF (downloaded from a Hub stand-in, progress and decision shown from its typed events), read the result; no document text in any log',
    async ({ redis }) => {
      const dir = await tempDir();
      const hub = await serveModelHub({ 'test/tiny/tiny.gguf': await readFile(await ensureTestModel('tiny')) });
      let status = '';
      const stack = new EmbeddedStack({
        redisUrl: redis.url,
        apiPort: await findFreePort(),
        exporterPort: await findFreePort(),
        dataDir: join(dir.path, 'data'),
        model: 'hf:test/tiny/tiny.gguf',
        sequences: 2,
        env: {
          GEMBATCH_REDIS_PREFIX: redis.prefix,
          GEMBATCH_THREADS: '1',
          GEMBATCH_METRICS_PORT: '0',
          GEMBATCH_LIVEZ_PORT: '0',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '2048',
          LOG_LEVEL: 'debug',
          HF_ENDPOINT: hub.endpoint,
        },
        status: { write: (chunk: string) => ((status += chunk), true) } as unknown as NodeJS.WritableStream,
        readyTimeoutMs: 90_000,
      });
      // Empty, libuv would give the worker one pool thread: the stack sets the worker's own size.
      const savedThreadpool = process.env.UV_THREADPOOL_SIZE;
      process.env.UV_THREADPOOL_SIZE = '';
      try {
        const urls = await stack.start().finally(() => {
          if (savedThreadpool === undefined) delete process.env.UV_THREADPOOL_SIZE;
          else process.env.UV_THREADPOOL_SIZE = savedThreadpool;
        });
        // From the worker's IPC events (the CLI reads no log line): the download, the decision, ready.
        expect(status).toMatch(/^downloading model: 100%$/m);
        expect(status).toMatch(/^model {6}\S+tiny\.gguf \(\w+\): the given file tiny\.gguf fits/m);
        expect(hub.revisions).toContain('main');
        const client = new ApiClient({ baseUrl: urls.api });
        const pdf = await writeTextPdf(join(dir.path, 'lease.pdf'), PAGES);
        const file = await client.uploadFile(pdf);
        const created = await client.createJob({ file_id: file.id, task: 'summarize', max_tokens: 32 });
        expect(created.status).toBe('queued');

        const view = await vi.waitFor(
          async () => {
            const current = await client.getJob(created.id);
            if (current.status !== 'completed' && current.status !== 'failed') throw new Error(current.status);
            return current;
          },
          { timeout: 60_000, interval: 100 },
        );
        expect(view.error).toBeNull();
        expect(view.status).toBe('completed');
        const result = await client.getResult(created.id);
        expect((result.output as { text: string }).text.length).toBeGreaterThan(0);
        expect(result.usage.prompt_tokens).toBeGreaterThan(0);
        expect(result.usage.generated_tokens).toBeGreaterThan(0);
        expect(result.timings.total_ms).toBeGreaterThan(0);
        expect(result.timings.generate_ms).toBeGreaterThan(0);
        expect(result.timings.time_to_first_token_ms).toBeGreaterThan(0);
        expect(result.extraction?.media_type).toBe('application/pdf');
      } finally {
        await stack.stop(10_000);
      }

      const logs = join(dir.path, 'data', 'logs');
      const files = await readdir(logs);
      expect(files.sort()).toEqual(['api.log', 'exporter.log', 'worker.log']);
      let lines = 0;
      for (const name of files) {
        const text = await readFile(join(logs, name), 'utf8');
        lines += text.split('\n').length;
        for (const word of SECRET_WORDS) expect(text, `${name} mentions document text`).not.toContain(word);
      }
      expect(lines).toBeGreaterThan(10);
      const ready = (await readFile(join(logs, 'worker.log'), 'utf8'))
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { msg: string; threadpool?: number })
        .find((line) => line.msg === 'worker ready');
      expect(ready?.threadpool).toBe(Math.max(2, availableParallelism()));
      await dir.cleanup();
    },
    150_000,
  );

  redisTest(
    'a service that dies while the stack starts fails the start at once, with the error it logged',
    async ({ redis }) => {
      const dir = await tempDir();
      // The API's port is taken (another process got it between choosing and binding).
      const taken = createServer((socket) => socket.destroy());
      await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening));
      onTestFinished(() => new Promise<void>((closed) => taken.close(() => closed())));
      const address = taken.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      const stack = new EmbeddedStack({
        redisUrl: redis.url,
        apiPort: address.port,
        exporterPort: await findFreePort(),
        dataDir: join(dir.path, 'data'),
        model: await ensureTestModel('tiny'),
        sequences: 1,
        env: { GEMBATCH_REDIS_PREFIX: redis.prefix, GEMBATCH_THREADS: '1', GEMBATCH_METRICS_PORT: '0' },
        status: { write: () => true } as unknown as NodeJS.WritableStream,
        readyTimeoutMs: 60_000,
      });
      try {
        const started = Date.now();
        await expect(stack.start()).rejects.toThrow(
          /^api exited with code 1; see .*api\.log; its last error: .*EADDRINUSE/,
        );
        expect(Date.now() - started).toBeLessThan(30_000);
      } finally {
        await stack.stop();
        await dir.cleanup();
      }
    },
    90_000,
  );
});
