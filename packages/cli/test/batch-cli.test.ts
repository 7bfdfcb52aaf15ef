import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect } from 'vitest';
import { ensureTestModel, findFreePort, redisTest, tempDir } from '@gembatch/testing';
import { ApiClient } from '../src/api-client.ts';
import { runBatch } from '../src/commands/batch.ts';
import { runSchedule } from '../src/commands/schedule.ts';
import { EmbeddedStack } from '../src/embedded-stack.ts';
import { submitFiles, type SubmitRecord } from '../src/submit-files.ts';
import { uploadInputs } from '../src/upload-state.ts';

/** A writable that keeps what it is given. */
function sink(onText?: (text: string) => void): Writable & { text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      onText?.(chunks.join(''));
      callback();
    },
  });
  return Object.assign(stream, { text: () => chunks.join('') });
}

describe('the CLI on batches and schedules (real stack, tiny GGUF)', () => {
  redisTest(
    'submit resumes after an interruption (no file uploaded twice, the same batch), batch create --wait/output/list/status, schedule add/run/runs/pause/rm',
    async ({ redis }) => {
      const dir = await tempDir('gembatch-cli-');
      const root = join(dir.path, 'root');
      const inbox = join(root, 'inbox');
      await mkdir(inbox, { recursive: true });
      const files: string[] = [];
      for (let i = 1; i <= 6; i += 1) {
        const path = join(inbox, `memo-${i}.txt`);
        await writeFile(path, `Memo ${i}: the shipment of ${i * 3} boxes left the warehouse on time.\n`);
        files.push(path);
      }
      const apiPort = await findFreePort();
      const stack = new EmbeddedStack({
        redisUrl: redis.url,
        apiPort,
        exporterPort: await findFreePort(),
        dataDir: join(dir.path, 'data'),
        model: await ensureTestModel('tiny'),
        sequences: 4,
        env: {
          GEMBATCH_REDIS_PREFIX: redis.prefix,
          GEMBATCH_THREADS: '1',
          GEMBATCH_METRICS_PORT: '0',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
          GEMBATCH_SCHEDULE_ROOT: root,
        },
        status: { write: () => true } as unknown as NodeJS.WritableStream,
        readyTimeoutMs: 120_000,
      });
      const api = `http://127.0.0.1:${apiPort}`;
      const client = new ApiClient({ baseUrl: api });
      const statePath = join(dir.path, 'uploads.json');
      const job = { task: 'summarize', max_tokens: 8 };
      try {
        await stack.start();

        // Ctrl-C during the uploads: two files are up and recorded, the command stops.
        const interrupt = new AbortController();
        await expect(
          uploadInputs({
            client,
            server: api,
            files,
            statePath,
            concurrency: 1,
            signal: interrupt.signal,
            onFile: (index) => index === 1 && interrupt.abort(),
          }),
        ).rejects.toThrow();
        expect(
          Object.keys(
            (JSON.parse(await readFile(statePath, 'utf8')) as { servers: Record<string, object> }).servers[api] ?? {},
          ),
        ).toHaveLength(2);

        // Ctrl-C while waiting: the batch exists and keeps running.
        const waiting = new AbortController();
        const progress = sink((text) => /batch batch_/.test(text) && waiting.abort());
        const firstTry = await submitFiles({
          client,
          server: api,
          files,
          job,
          statePath,
          onRecord: () => undefined,
          progress: progress as unknown as NodeJS.WriteStream,
          signal: waiting.signal,
          pollMs: 50,
        });
        expect(firstTry).toBeUndefined();
        expect(progress.text()).toContain('keeps running. Run the same command again');
        const batchId = /batch (batch_[0-9a-f]{32})/.exec(progress.text())?.[1];
        expect(batchId).toBeDefined();
        expect(progress.text()).toContain('uploaded 6/6 (2 already on the server)');

        // The same command again: nothing uploaded again, the same batch, one record per input in input order.
        const again = sink();
        const records: SubmitRecord[] = [];
        await submitFiles({
          client,
          server: api,
          files,
          job,
          statePath,
          onRecord: (r) => records.push(r),
          progress: again as unknown as NodeJS.WriteStream,
          pollMs: 50,
        });
        expect(again.text()).toContain('uploaded 6/6 (6 already on the server)');
        expect(again.text()).toContain(`batch ${batchId}`);
        expect(records.map((r) => [r.input, r.status])).toEqual(files.map((f) => [f, 'completed']));
        for (const record of records) {
          expect(record.job_id).toMatch(/^job_/);
          expect((record.result as { text: string }).text.length).toBeGreaterThan(0);
          expect(record.usage?.generated_tokens).toBeGreaterThan(0);
          expect(record.timings?.total_ms).toBeGreaterThan(0);
        }
        // Seen through: the same command once more is a new batch, not the old results again.
        const third = sink();
        await submitFiles({
          client,
          server: api,
          files,
          job,
          statePath,
          onRecord: () => undefined,
          progress: third as unknown as NodeJS.WriteStream,
          pollMs: 50,
        });
        const thirdBatch = /batch (batch_[0-9a-f]{32})/.exec(third.text())?.[1];
        expect(thirdBatch).toMatch(/^batch_/);
        expect(thirdBatch).not.toBe(batchId);
        const listed = (
          await client.call<{ data: Array<{ purpose: string }> }>('GET', '/v1/files?purpose=user_data&limit=100')
        ).data;
        expect(listed).toHaveLength(6);
        const finished = await client.getBatch(batchId as string);
        expect(finished.usage?.output_tokens).toBeGreaterThan(0);

        // gembatch batch create <jsonl> --wait, then output/status/list.
        const input = join(dir.path, 'requests.jsonl');
        await writeFile(
          input,
          ['alpha', 'beta', 'gamma']
            .map((word) =>
              JSON.stringify({
                custom_id: word,
                method: 'POST',
                url: '/v1/jobs',
                body: { text: `The word of the day is ${word}.`, task: 'summarize', max_tokens: 8 },
              }),
            )
            .join('\n') + '\n',
        );
        const created = sink();
        expect(await runBatch(['create', input, '--wait', '--api', api], created)).toBe(0);
        const jsonlBatch = created.text().trim();
        expect(jsonlBatch).toMatch(/^batch_[0-9a-f]{32}$/);
        const output = sink();
        expect(await runBatch(['output', jsonlBatch, '--api', api], output)).toBe(0);
        expect(
          output
            .text()
            .trim()
            .split('\n')
            .map((line) => (JSON.parse(line) as { custom_id: string }).custom_id),
        ).toEqual(['alpha', 'beta', 'gamma']);
        const status = sink();
        await runBatch(['status', jsonlBatch, '--api', api], status);
        expect(JSON.parse(status.text())).toMatchObject({
          id: jsonlBatch,
          status: 'completed',
          request_counts: { total: 3, completed: 3, failed: 0 },
        });
        const list = sink();
        await runBatch(['list', '--api', api], list);
        expect(list.text()).toContain(jsonlBatch);
        expect(list.text()).toContain(batchId);

        // gembatch batch create <folder> --task: one request per file, custom_id the path.
        const folderBatch = sink();
        expect(
          await runBatch(
            ['create', inbox, '--task', 'summarize', '--max-tokens', '8', '--state', statePath, '--wait', '--api', api],
            folderBatch,
          ),
        ).toBe(0);

        // The same files as chat completions: --prompt plus each file as a file part.
        const chatBatch = sink();
        expect(
          await runBatch(
            [
              'create',
              inbox,
              '--endpoint',
              '/v1/chat/completions',
              '--prompt',
              'Summarize the memo.',
              '--model',
              'tiny-chat',
              '--max-tokens',
              '8',
              '--state',
              statePath,
              '--wait',
              '--api',
              api,
            ],
            chatBatch,
          ),
        ).toBe(0);
        const chatLines = sink();
        await runBatch(['output', chatBatch.text().trim(), '--api', api], chatLines);
        const chats = chatLines
          .text()
          .trim()
          .split('\n')
          .map(
            (line) => JSON.parse(line) as { custom_id: string; response: { body: { object: string; model: string } } },
          );
        expect(chats).toHaveLength(6);
        expect(chats[0]?.custom_id).toMatch(/memo-1\.txt$/);
        expect(chats[0]?.response.body).toMatchObject({ object: 'chat.completion', model: 'tiny-chat' });

        // gembatch schedule add / run --wait / runs / pause / rm.
        const added = sink();
        expect(
          await runSchedule(
            [
              'add',
              '--cron',
              '0 3 * * *',
              '--timezone',
              'Europe/Paris',
              '--source',
              'inbox',
              '--output',
              'out',
              '--task',
              'summarize',
              '--option',
              'length=short',
              '--api',
              api,
            ],
            added,
          ),
        ).toBe(0);
        const scheduleId = added.text().trim();
        expect(scheduleId).toMatch(/^sched_/);
        expect(await runSchedule(['run', scheduleId, '--wait', '--api', api], sink())).toBe(0);
        const runs = sink();
        await runSchedule(['runs', scheduleId, '--api', api], runs);
        expect(runs.text()).toMatch(
          /completed .*files 6 new of 6 {2}batch batch_[0-9a-f]{32} 6\/6 completed, 0 failed/,
        );
        const paused = sink();
        await runSchedule(['pause', scheduleId, '--api', api], paused);
        expect(paused.text()).toContain('paused');
        const all = sink();
        await runSchedule(['list', '--api', api], all);
        expect(all.text()).toContain(
          `${scheduleId}  paused  "0 3 * * *" Europe/Paris  inbox → out  summarize  next -  seen 6  last completed`,
        );
        expect(await runSchedule(['rm', scheduleId, '--api', api], sink())).toBe(0);
        await expect(runSchedule(['show', scheduleId, '--api', api], sink())).rejects.toThrow(/no schedule/);
      } finally {
        await stack.stop(15_000);
        await dir.cleanup();
      }
    },
    240_000,
  );
});
