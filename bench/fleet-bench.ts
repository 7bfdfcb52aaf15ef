/**
 * `pnpm bench:fleet [--workers 1,2,3] [--jobs 120] [--model tiny|bench] [--max-tokens 64] [--sequences 4] [--threads 1]`
 *
 * How throughput scales with worker nodes on one machine: for each worker count it starts the
 * embedded stack (Redis, API, N worker processes, exporter), submits the same inline-text summarize
 * jobs through the API, waits for all of them, and prints jobs/s and generated tok/s end to end
 * (submission to last completion) with the load average before and after, since a shared machine
 * makes every figure noisy. Each worker runs `--threads` engine threads, so N workers use N × threads cores.
 */
import { rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiClient, EmbeddedStack } from '@gembatch/cli';
import { findFreePort } from '@gembatch/config';
import { ensureTestModel } from '@gembatch/testing/models';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2,3' },
    jobs: { type: 'string', default: '120' },
    model: { type: 'string', default: 'tiny' },
    'max-tokens': { type: 'string', default: '64' },
    sequences: { type: 'string', default: '4' },
    threads: { type: 'string', default: '1' },
  },
});
const counts = values.workers.split(',').map(Number);
const jobs = Number(values.jobs);
const model = await ensureTestModel(values.model === 'bench' ? 'bench' : 'tiny');
const load = () =>
  loadavg()
    .map((v) => v.toFixed(1))
    .join(' / ');
/** Bound on one run: generous for a busy machine with few cores. */
const RUN_TIMEOUT_MS = 15 * 60_000;

const rows: string[] = [];
for (const workers of counts) {
  const dataDir = join(tmpdir(), `gembatch-fleet-bench-${process.pid}-${workers}`);
  const stack = new EmbeddedStack({
    dataDir,
    apiPort: await findFreePort(),
    exporterPort: await findFreePort(),
    model,
    sequences: Number(values.sequences),
    workers,
    env: { GEMBATCH_THREADS: values.threads, GEMBATCH_CONTEXT_PER_SEQUENCE: '1024', LOG_LEVEL: 'warn' },
    status: { write: () => true } as unknown as NodeJS.WritableStream,
    readyTimeoutMs: 180_000,
  });
  try {
    const urls = await stack.start();
    const client = new ApiClient({ baseUrl: urls.api });
    const loadBefore = load();
    const started = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < jobs; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(20, jobs - i) }, (_, k) =>
          client.createJob({
            text: `Bench document ${i + k}: the council approved the new cycle lanes on the harbour road.`,
            task: 'summarize',
            max_tokens: Number(values['max-tokens']),
          }),
        ),
      );
      ids.push(...batch.map((v) => v.id));
    }
    const deadline = started + RUN_TIMEOUT_MS;
    let generated = 0;
    const pending = new Set(ids);
    while (pending.size > 0) {
      if (Date.now() > deadline)
        throw new Error(`${pending.size} jobs unfinished after ${RUN_TIMEOUT_MS / 60_000} min`);
      for (const id of [...pending]) {
        const view = await client.getJob(id);
        if (view.status === 'failed') throw new Error(`job ${id} failed: ${JSON.stringify(view.error)}`);
        if (view.status === 'completed') {
          pending.delete(id);
          generated += view.usage?.generated_tokens ?? 0;
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const seconds = (Date.now() - started) / 1000;
    rows.push(
      `${String(workers).padStart(7)}  ${String(jobs).padStart(4)}  ${seconds.toFixed(1).padStart(7)}  ${(jobs / seconds).toFixed(2).padStart(6)}  ${(generated / seconds).toFixed(0).padStart(9)}  ${loadBefore} → ${load()}`,
    );
    process.stderr.write(`${rows.at(-1)}\n`);
  } finally {
    await stack.stop(15_000);
    await rm(dataDir, { recursive: true, force: true });
  }
}
process.stdout.write(
  `model ${values.model}, ${values.sequences} sequences and ${values.threads} thread(s) per worker, ${values['max-tokens']} max tokens\nworkers  jobs  seconds  jobs/s  gen tok/s  load avg 1/5/15 min (before → after)\n${rows.join('\n')}\n`,
);
