import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { ensureTestModel, findFreePort, redisTest, tempDir, writeTextPdf } from '@gembatch/testing';
import { ApiClient } from '../src/api-client.ts';
import { EmbeddedStack } from '../src/embedded-stack.ts';

const FILES = 8;

describe('two workers on different data dirs that share only the blob directory (two hosts with one NFS / RWX volume)', () => {
  redisTest(
    'files uploaded to the API are extracted on one node and generated on both; no node keeps a blob of its own',
    async ({ redis }) => {
      const dir = await tempDir();
      const blobs = join(dir.path, 'shared-blobs');
      const hostA = join(dir.path, 'host-a');
      const hostB = join(dir.path, 'host-b');
      const stack = new EmbeddedStack({
        redisUrl: redis.url,
        apiPort: await findFreePort(),
        exporterPort: await findFreePort(),
        dataDir: join(dir.path, 'api-host'),
        model: await ensureTestModel('tiny'),
        sequences: 2,
        workers: 2,
        env: {
          GEMBATCH_REDIS_PREFIX: redis.prefix,
          GEMBATCH_THREADS: '1',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '2048',
          GEMBATCH_BLOBS_DIR: blobs,
        },
        // Host B reads no file itself: every text it generates from was extracted on host A and reached it through the shared blobs.
        workerEnv: [{ GEMBATCH_DATA_DIR: hostA }, { GEMBATCH_DATA_DIR: hostB, GEMBATCH_EXTRACT_ENABLED: 'false' }],
        status: { write: () => true } as unknown as NodeJS.WritableStream,
        readyTimeoutMs: 120_000,
      });
      try {
        const urls = await stack.start();
        const client = new ApiClient({ baseUrl: urls.api });
        const ids: string[] = [];
        for (let i = 0; i < FILES; i++) {
          const pdf = await writeTextPdf(join(dir.path, `memo-${i}.pdf`), [
            `Memo ${i}. The library opens at nine and closes at five on weekdays.`,
          ]);
          const file = await client.uploadFile(pdf);
          ids.push((await client.createJob({ file_id: file.id, task: 'summarize', max_tokens: 64 })).id);
        }
        const nodes = await vi.waitFor(
          async () => {
            const results = await Promise.all(
              ids.map(async (id) => {
                const view = await client.getJob(id);
                if (view.status === 'failed') throw new Error(`job ${id} failed: ${JSON.stringify(view.error)}`);
                if (view.status !== 'completed') throw new Error(`${id} ${view.status}`);
                return (await client.getResult(id)).node;
              }),
            );
            return results;
          },
          { timeout: 90_000, interval: 250 },
        );
        expect(new Set(nodes).size).toBe(2);
        // Everything lives in the shared directory; neither worker host has a blob store of its own.
        expect(existsSync(join(hostA, 'blobs'))).toBe(false);
        expect(existsSync(join(hostB, 'blobs'))).toBe(false);
        expect(existsSync(join(dir.path, 'api-host', 'blobs'))).toBe(false);
        expect((await readdir(blobs)).length).toBeGreaterThan(0);
      } finally {
        await stack.stop(10_000);
        await dir.cleanup();
      }
    },
    150_000,
  );
});
