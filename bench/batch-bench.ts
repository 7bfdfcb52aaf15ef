/**
 * Batch overhead: the same N short text jobs (default 2,000) run once as plain `POST /v1/jobs`
 * submissions and once as one `/v1/jobs` batch, on one embedded stack (redis-server, API with its
 * batch feeder, one worker on the tiny test model). Prints generated tokens per second for both,
 * measured from the first submission to the last result, and their ratio (≥ 0.9 wanted: the
 * feeder's bounded window must keep the worker as busy as a full queue does). Numbers only.
 *
 *   pnpm bench:batch [--requests 2000] [--sequences 4] [--model tiny|path.gguf]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedStack } from '@gembatch/cli';
import { ensureTestModel } from '@gembatch/testing/models';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    sequences: { type: 'string', default: '4' },
    model: { type: 'string', default: 'tiny' },
  },
});
const N = Number(values.requests);
const model = values.model === 'tiny' || values.model === 'bench' ? await ensureTestModel(values.model) : values.model;
/** Plain submissions in flight at once: enough to keep the queue full, as a client script would. */
const SUBMIT_CONCURRENCY = 32;
/** Why 8 tokens: short answers make per-job overhead (queues, feeder, files) as visible as it gets. */
const MAX_TOKENS = 8;

const dir = await mkdtemp(join(tmpdir(), 'gembatch-batch-bench-'));
const port = 18_000 + Math.floor(Math.random() * 2_000);
const stack = new EmbeddedStack({
  apiPort: port,
  exporterPort: port + 1,
  dataDir: dir,
  model,
  sequences: Number(values.sequences),
  env: { GEMBATCH_THREADS: '1', GEMBATCH_METRICS_PORT: '0', GEMBATCH_CONTEXT_PER_SEQUENCE: '1024', LOG_LEVEL: 'warn' },
  status: process.stderr,
  readyTimeoutMs: 120_000,
});
const api = `http://127.0.0.1:${port}`;

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${api}${path}`, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
const text = (i: number, run: string) => `Report ${run}-${i}: the shipment arrived on time and intact.`;

async function plainJobs(): Promise<{ seconds: number; tokens: number }> {
  const startedAt = Date.now();
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: SUBMIT_CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        ids[i] = (
          await call<{ id: string }>('POST', '/v1/jobs', {
            text: text(i, 'plain'),
            task: 'summarize',
            max_tokens: MAX_TOKENS,
          })
        ).id;
      }
    }),
  );
  let tokens = 0;
  let lastFinished = 0;
  for (const id of ids) {
    for (;;) {
      const view = await call<{
        status: string;
        finished_at: string | null;
        usage: { generated_tokens: number } | null;
      }>('GET', `/v1/jobs/${id}`);
      if (view.status === 'completed') {
        tokens += view.usage?.generated_tokens ?? 0;
        lastFinished = Math.max(lastFinished, Date.parse(view.finished_at as string));
        break;
      }
      if (view.status === 'failed' || view.status === 'cancelled') throw new Error(`job ${id} ${view.status}`);
      await sleep(50);
    }
  }
  // Until the last job finished (not until this loop read it), so polling costs the plain run nothing.
  return { seconds: (lastFinished - startedAt) / 1000, tokens };
}

async function batch(): Promise<{ seconds: number; tokens: number }> {
  const lines = Array.from({ length: N }, (_, i) =>
    JSON.stringify({
      custom_id: `r${i}`,
      method: 'POST',
      url: '/v1/jobs',
      body: { text: text(i, 'batch'), task: 'summarize', max_tokens: MAX_TOKENS },
    }),
  ).join('\n');
  const form = new FormData();
  form.set('purpose', 'batch');
  form.set('file', new Blob([lines]), 'bench.jsonl');
  const startedAt = Date.now();
  const file = (await (await fetch(`${api}/v1/files`, { method: 'POST', body: form })).json()) as { id: string };
  const created = await call<{ id: string }>('POST', '/v1/batches', { input_file_id: file.id, endpoint: '/v1/jobs' });
  let batchView: { status: string; output_file_id: string | null };
  for (;;) {
    batchView = await call('GET', `/v1/batches/${created.id}`);
    if (['completed', 'failed', 'cancelled', 'expired'].includes(batchView.status)) break;
    await sleep(50);
  }
  // The batch's own completed_at: finalizing (writing the ordered output file) counts against the batch.
  const seconds =
    (((batchView as unknown as { completed_at: number }).completed_at * 1000 || Date.now()) - startedAt) / 1000;
  if (batchView.status !== 'completed' || !batchView.output_file_id) throw new Error(`batch ${batchView.status}`);
  const output = await (await fetch(`${api}/v1/files/${batchView.output_file_id}/content`)).text();
  let tokens = 0;
  for (const line of output.split('\n'))
    if (line)
      tokens += (JSON.parse(line) as { response: { body: { usage: { generated_tokens: number } } } }).response.body
        .usage.generated_tokens;
  return { seconds, tokens };
}

try {
  await stack.start();
  // One small warm-up run so neither measurement pays for first-use costs.
  await call('POST', '/v1/jobs', { text: 'warm up', task: 'summarize', max_tokens: 2 });
  const plain = await plainJobs();
  const batched = await batch();
  const plainRate = plain.tokens / plain.seconds;
  const batchRate = batched.tokens / batched.seconds;
  console.log(
    `plain /v1/jobs: ${N} jobs, ${plain.tokens} tokens in ${plain.seconds.toFixed(1)} s = ${plainRate.toFixed(1)} tok/s`,
  );
  console.log(
    `one batch:      ${N} requests, ${batched.tokens} tokens in ${batched.seconds.toFixed(1)} s = ${batchRate.toFixed(1)} tok/s`,
  );
  console.log(`batch / plain:  ${(batchRate / plainRate).toFixed(2)}`);
} finally {
  await stack.stop(15_000);
  await rm(dir, { recursive: true, force: true });
}
