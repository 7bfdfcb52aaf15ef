/**
 * Batch feeder outcome reads: client CPU per job of `readJobOutcome` (one job at a time, a slice
 * of them in flight) against `readJobOutcomes` (one MULTI per slice), over jobs completed in the
 * generate queue of a real Redis (a `redis-server` this script starts, or a container, or `REDIS_URL`).
 *
 *   pnpm bench:outcome-reads [--jobs 4000] [--slices 1,4,16,64] [--rounds 2]
 *
 * Prints one row per slice size and round: µs of this process's CPU per job read each way, and
 * their ratio. Both ways take turns within each round, so a drift of the machine's speed favours neither.
 */
import { parseArgs } from 'node:util';
import { readJobOutcome, readJobOutcomes } from '@gembatch/batches';
import { QUEUE_NAMES } from '@gembatch/contracts';
import { createRedisConnection, defineWorker, JobProducer } from '@gembatch/queue';
import { createLogger } from '@gembatch/telemetry';
import { startRedis } from '@gembatch/testing/redis-server';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '4000' },
    slices: { type: 'string', default: '1,4,16,64' },
    rounds: { type: 'string', default: '2' },
  },
  strict: true,
});
const jobs = Number(values.jobs);
const slices = values.slices.split(',').map(Number);
const rounds = Number(values.rounds);
const prefix = 'bench';
/** What a generate job returns (the feeder parses it as `GenerateJobResult`). */
const RESULT = {
  result_sha256: 'a'.repeat(64),
  usage: { prompt_tokens: 12, generated_tokens: 3 },
  timings: { queue_wait_ms: 1, time_to_first_token_ms: 2, inter_token_ms: 1, generate_ms: 4, total_ms: 6 },
  finish_reason: 'stop',
  node: 'bench',
  model: 'bench',
  chunks: 1,
};

const redis = await startRedis();
const connection = createRedisConnection({ url: redis.url, name: 'bench' });
const blocking = createRedisConnection({ url: redis.url, name: 'bench-worker', blocking: true });
const producer = new JobProducer({ connection, prefix });
try {
  process.stdout.write(`completing ${jobs} jobs in ${redis.mode} Redis...\n`);
  const ids = Array.from({ length: jobs }, (_, i) => `job_${i}`);
  await producer.queues[QUEUE_NAMES.generate].addBulk(
    ids.map((jobId) => ({ name: 'generate', data: {}, opts: { jobId } })),
  );
  let settled = 0;
  let allSettled: () => void = () => undefined;
  const done = new Promise<void>((resolveDone) => (allSettled = resolveDone));
  const worker = defineWorker<unknown, unknown>({
    queue: QUEUE_NAMES.generate,
    prefix,
    connection: blocking,
    concurrency: 64,
    logger: createLogger({ service: 'bench', level: 'silent' }),
    parse: (data) => data,
    processor: async () => RESULT,
    onSettled: () => {
      settled += 1;
      if (settled === jobs) allSettled();
    },
  });
  await done;
  await worker.close();

  const rows: string[][] = [];
  for (let round = 1; round <= rounds; round += 1) {
    for (const size of slices) {
      const cpu: Record<'oneByOne' | 'together', number> = { oneByOne: 0, together: 0 };
      const order = round % 2 === 1 ? (['oneByOne', 'together'] as const) : (['together', 'oneByOne'] as const);
      for (const way of order) {
        const before = process.cpuUsage();
        for (let i = 0; i < jobs; i += size) {
          const slice = ids.slice(i, i + size);
          const outcomes =
            way === 'together'
              ? await readJobOutcomes(producer, connection, prefix, slice)
              : await Promise.all(slice.map((jobId) => readJobOutcome(producer, connection, prefix, jobId)));
          if (!outcomes.every((outcome) => outcome?.ok === true)) throw new Error('a job did not read as completed');
        }
        const used = process.cpuUsage(before);
        cpu[way] = (used.user + used.system) / jobs;
      }
      rows.push([
        String(round),
        String(size),
        cpu.oneByOne.toFixed(1),
        cpu.together.toFixed(1),
        (cpu.together / cpu.oneByOne).toFixed(2),
      ]);
    }
  }
  const header = ['round', 'jobs per slice', 'one by one µs/job', 'together µs/job', 'together ÷ one by one'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |\n`;
  process.stdout.write(line(header) + `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const row of rows) process.stdout.write(line(row));
} finally {
  await producer.close();
  await connection.quit();
  await blocking.quit();
  await redis.close();
}
