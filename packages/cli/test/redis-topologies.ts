import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { vi } from 'vitest';
import type { JobView } from '@gembatch/contracts';
import { ensureTestModel, findFreePort, tempDir } from '@gembatch/testing';
import { ApiClient } from '../src/api-client.ts';
import { EmbeddedStack, type StackUrls } from '../src/embedded-stack.ts';

/** The embedded stack (API, one worker, exporter as processes) on the tiny model against `redisUrl`. */
export interface TopologyStack {
  stack: EmbeddedStack;
  urls: StackUrls;
  client: ApiClient;
  prefix: string;
  close(): Promise<void>;
}

export async function startTopologyStack(redisUrl: string): Promise<TopologyStack> {
  const dir = await tempDir();
  const prefix = `topo-${randomBytes(4).toString('hex')}`;
  const stack = new EmbeddedStack({
    redisUrl,
    apiPort: await findFreePort(),
    exporterPort: await findFreePort(),
    dataDir: join(dir.path, 'data'),
    model: await ensureTestModel('tiny'),
    sequences: 4,
    env: {
      GEMBATCH_REDIS_PREFIX: prefix,
      GEMBATCH_THREADS: '1',
      GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
      LOG_LEVEL: 'debug',
    },
    status: { write: () => true } as unknown as NodeJS.WritableStream,
    readyTimeoutMs: 90_000,
  });
  const close = async () => {
    await stack.stop(10_000);
    await dir.cleanup();
  };
  try {
    const urls = await stack.start();
    return { stack, urls, client: new ApiClient({ baseUrl: urls.api }), prefix, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Submits `count` short summarize jobs through the API; returns their ids. */
export async function submitJobs(client: ApiClient, count: number, maxTokens: number): Promise<string[]> {
  const views = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      client.createJob({
        text: `Topology document ${i}: the ferry timetable changes in spring.`,
        task: 'summarize',
        max_tokens: maxTokens,
      }),
    ),
  );
  return views.map((v) => v.id);
}

/** Waits until every job has finished and returns the final views. */
export async function waitForJobs(client: ApiClient, ids: readonly string[], timeoutMs: number): Promise<JobView[]> {
  return vi.waitFor(
    async () => {
      const views = await Promise.all(ids.map((id) => client.getJob(id)));
      const pending = views.filter((v) => v.status !== 'completed' && v.status !== 'failed');
      if (pending.length > 0) throw new Error(`${pending.length} jobs not finished`);
      return views;
    },
    { timeout: timeoutMs, interval: 250 },
  );
}
