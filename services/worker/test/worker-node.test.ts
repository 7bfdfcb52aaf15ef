import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import type { JobResultDocument } from '@gembatch/contracts';
import { getJobResultSha256 } from '@gembatch/queue';
import { getJson } from '@gembatch/storage';
import { ensureTestModel, makeLongText, redisTest, tempDir, writeTextPdf, writeZeroByteFile } from '@gembatch/testing';
import { writeFile } from 'node:fs/promises';
import { startWorker, TENANT } from './worker-harness.ts';

describe('worker node', () => {
  redisTest('runs 8 jobs at once on 4 sequences, and decodes carry several sequences', async ({ redis }) => {
    const worker = await startWorker(redis, {
      GEMBATCH_MODEL: await ensureTestModel('tiny'),
      GEMBATCH_SEQUENCES: '4',
      GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
    });
    const engine = worker.node.engine;
    if (!engine) throw new Error('engine not loaded');
    const before = engine.stats();
    const ids = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        worker.submitText(`Document number ${i}. The tenant wrote a letter about the lease and the rent.`),
      ),
    );
    const views = await Promise.all(ids.map((id) => worker.settle(id)));
    for (const view of views) {
      expect(view.status).toBe('completed');
      expect(view.usage?.generated_tokens).toBeGreaterThan(0);
      expect(view.usage?.prompt_tokens).toBeGreaterThan(0);
    }
    const generated = views.reduce((sum, v) => sum + (v.usage?.generated_tokens ?? 0), 0);
    const after = engine.stats();
    const decodes = after.decodeCallsTotal - before.decodeCallsTotal;
    // Each generated token needs one decode of its sequence. Had every decode carried a single
    // sequence, there would be at least as many decodes as generated tokens; fewer proves sharing.
    expect(decodes).toBeGreaterThan(0);
    expect(decodes).toBeLessThan(generated);
    expect(after.generationTokensTotal - before.generationTokensTotal).toBe(generated);
  });

  redisTest(
    'a zero-byte file and a non-PDF "document" fail with typed codes, and the next job still runs',
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '2',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
      });
      const dir = await tempDir();
      const empty = await writeZeroByteFile(join(dir.path, 'empty.pdf'));
      const garbage = join(dir.path, 'scan.pdf');
      await writeFile(
        garbage,
        Buffer.from([0x00, 0x01, 0x02, 0xfe, 0xff, 0x13, 0x37, 0x42, 0x00, 0x99, 0x88, 0x77])
          .toString('binary')
          .repeat(100),
        'binary',
      );
      const good = await writeTextPdf(join(dir.path, 'letter.pdf'), [
        'Dear tenant, the rent is due on the first of the month.',
      ]);

      const emptyView = await worker.settle(await worker.submitFile(empty));
      expect(emptyView.status).toBe('failed');
      expect(emptyView.error?.code).toBe('GB_ERR_EMPTY_INPUT');
      const garbageView = await worker.settle(await worker.submitFile(garbage));
      expect(garbageView.status).toBe('failed');
      expect(garbageView.error?.code).toBe('GB_ERR_UNSUPPORTED_MEDIA');
      const goodView = await worker.settle(await worker.submitFile(good));
      expect(goodView.status).toBe('completed');
      expect(goodView.usage?.generated_tokens).toBeGreaterThan(0);
      await dir.cleanup();
    },
  );

  redisTest(
    'an input three times the context runs as ordered chunk jobs, each processed once, then reduced',
    async ({ redis }) => {
      const context = 512;
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '4',
        GEMBATCH_CONTEXT_PER_SEQUENCE: String(context),
        GEMBATCH_CHUNK_OVERLAP_TOKENS: '16',
      });
      const engine = worker.node.engine;
      if (!engine) throw new Error('engine not loaded');
      let text = makeLongText(400, 7);
      while ((await engine.countTokens(text)) < 3 * context) text += `\n${makeLongText(100, text.length)}`;
      const jobId = await worker.submitText(text);
      const view = await worker.settle(jobId, 120_000);
      expect(view.status).toBe('completed');

      const result = await getJson(worker.blobs, await getJobResultSha256(worker.producer, jobId, TENANT), {
        parse: (v: unknown) => v as JobResultDocument,
      });
      expect(result.chunks).toBeGreaterThanOrEqual(3);
      const queue = worker.producer.queues.generate;
      const children = await Promise.all(
        Array.from({ length: result.chunks }, (_, i) => queue.getJob(`${jobId}-chunk-${i}`)),
      );
      const returned: number[] = [];
      for (const child of children) {
        expect(child).toBeDefined();
        expect(await child?.getState()).toBe('completed');
        // Processed exactly once: one attempt, never retried or stalled.
        expect(child?.attemptsMade).toBe(1);
        expect(child?.stalledCounter ?? 0).toBe(0);
        returned.push((child?.returnvalue as { chunk: number }).chunk);
      }
      expect(returned).toEqual(Array.from({ length: result.chunks }, (_, i) => i));
      // The parent's usage is every chunk's plus the reduce step's.
      const chunkGenerated = children.reduce(
        (sum, c) =>
          sum + (c?.returnvalue as { outcome: { stats: { generatedTokens: number } } }).outcome.stats.generatedTokens,
        0,
      );
      expect(view.usage?.generated_tokens).toBeGreaterThan(chunkGenerated);
    },
  );

  redisTest(
    'reports its libuv threadpool, and warns when it lets fewer sequences sample than it could',
    async ({ redis }) => {
      // What libuv read when this process started is what the worker reports; here the variable is
      // changed afterwards, so only the report and the warning are under test.
      const saved = process.env.UV_THREADPOOL_SIZE;
      process.env.UV_THREADPOOL_SIZE = '1';
      try {
        const worker = await startWorker(redis, {
          GEMBATCH_MODEL: await ensureTestModel('tiny'),
          GEMBATCH_SEQUENCES: '2',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
        });
        const lines = worker.logLines.map(
          (line) => JSON.parse(line) as { level: string; msg: string; threadpool?: number },
        );
        expect(lines.find((line) => line.msg === 'worker ready')?.threadpool).toBe(1);
        const warning = lines.find((line) => line.level === 'warn' && line.msg.includes('UV_THREADPOOL_SIZE'));
        if (availableParallelism() >= 2) {
          expect(warning?.msg).toContain('UV_THREADPOOL_SIZE=1 lets 1 of 2 sequences sample');
          expect(warning?.threadpool).toBe(1);
        } else expect(warning).toBeUndefined();
      } finally {
        if (saved === undefined) delete process.env.UV_THREADPOOL_SIZE;
        else process.env.UV_THREADPOOL_SIZE = saved;
      }
    },
  );

  redisTest('never logs document text', async ({ redis }) => {
    const worker = await startWorker(redis, {
      GEMBATCH_MODEL: await ensureTestModel('tiny'),
      GEMBATCH_SEQUENCES: '2',
      GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
    });
    const secret = 'Zebulon Quartermaine owes 4471 dollars';
    const view = await worker.settle(await worker.submitText(`Ledger note: ${secret}.`));
    expect(view.status).toBe('completed');
    expect(worker.logLines.length).toBeGreaterThan(3);
    for (const line of worker.logLines) expect(line).not.toMatch(/Zebulon|Quartermaine|4471/);
  });
});
