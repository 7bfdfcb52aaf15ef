/**
 * Outcome reads over jobs completed in the generate queue of a real Redis (a `redis-server` this
 * script starts, or a container, or `REDIS_URL`):
 * - the batch feeder's: client CPU per job of `readJobOutcome` (one job at a time, a slice of them
 *   in flight) against `readJobOutcomes` (one MULTI per slice);
 * - `GET /v1/jobs/:id/result`'s: `getJobResultSha256` (one pipelined round trip for a completed
 *   job) against `getJobView` (the whole record, as `GET /v1/jobs/:id` reads it: one round trip for
 *   the pending submission, the stage queues holding the job and its cancel marker, then BullMQ's
 *   state script and the job in each of those; the result read went that way before), 16 in
 *   flight, with this process's and Redis's CPU and the wall time per read.
 *
 *   pnpm bench:outcome-reads [--jobs 4000] [--slices 1,4,16,64] [--rounds 2]
 *
 * Prints a table for each. Both ways take turns within each round, so a drift of the machine's
 * speed favours neither.
 */
import { parseArgs } from 'node:util';
import { readJobOutcome, readJobOutcomes } from '@gembatch/batches';
import { newJobId, QUEUE_NAMES } from '@gembatch/contracts';
import { createRedisConnection, defineWorker, getJobResultSha256, getJobView, JobProducer } from '@gembatch/queue';
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
const tenant = 'bench';
/** In flight at once for the result reads: the API serves many clients at a time. */
const READS_IN_FLIGHT = 16;
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
  const ids = Array.from({ length: jobs }, () => newJobId());
  await producer.queues[QUEUE_NAMES.generate].addBulk(
    ids.map((jobId) => ({ name: 'generate', data: jobSpec(jobId), opts: { jobId } })),
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
  printTable(['round', 'jobs per slice', 'one by one µs/job', 'together µs/job', 'together ÷ one by one'], rows);

  const readRows: string[][] = [];
  for (let round = 1; round <= rounds; round += 1) {
    const order = round % 2 === 1 ? (['view', 'result'] as const) : (['result', 'view'] as const);
    const costs = new Map<(typeof order)[number], ReadCost>();
    for (const way of order) {
      costs.set(
        way,
        await measureReads(ids, async (jobId) => {
          if (way === 'view') {
            if ((await getJobView(producer, jobId, tenant)).status !== 'completed')
              throw new Error(`${jobId} not completed`);
          } else if ((await getJobResultSha256(producer, jobId, tenant)) !== RESULT.result_sha256)
            throw new Error(`${jobId}: another result`);
        }),
      );
    }
    const view = costs.get('view') as ReadCost;
    const result = costs.get('result') as ReadCost;
    readRows.push([
      String(round),
      `${view.clientUs.toFixed(0)} / ${result.clientUs.toFixed(0)}`,
      `${view.redisUs.toFixed(0)} / ${result.redisUs.toFixed(0)}`,
      `${view.wallUs.toFixed(0)} / ${result.wallUs.toFixed(0)}`,
      (result.redisUs / view.redisUs).toFixed(2),
    ]);
  }
  process.stdout.write(
    `\nresult reads of completed jobs, ${READS_IN_FLIGHT} in flight: the whole record (getJobView) / getJobResultSha256\n`,
  );
  printTable(['round', 'client µs/read', 'redis µs/read', 'wall µs/read', 'redis: result ÷ record'], readRows);
} finally {
  await producer.close();
  await connection.quit();
  await blocking.quit();
  await redis.close();
}

/** A job record as the API stores it: the result read checks its tenant. */
function jobSpec(jobId: string) {
  return {
    job_id: jobId,
    tenant,
    task: 'prompt',
    options: {},
    max_tokens: 3,
    submitted_at: Date.now(),
    input: { type: 'text', sha256: 'b'.repeat(64) },
  };
}

interface ReadCost {
  clientUs: number;
  redisUs: number;
  wallUs: number;
}

/** Reads every job once, {@link READS_IN_FLIGHT} at a time: µs per read of this process's CPU, Redis's CPU and wall time. */
async function measureReads(jobIds: readonly string[], read: (jobId: string) => Promise<void>): Promise<ReadCost> {
  const redisBefore = await redisCpuSeconds();
  const before = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < jobIds.length; i += READS_IN_FLIGHT)
    await Promise.all(jobIds.slice(i, i + READS_IN_FLIGHT).map(read));
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(before);
  const redisSeconds = (await redisCpuSeconds()) - redisBefore;
  return {
    clientUs: (used.user + used.system) / jobIds.length,
    redisUs: (redisSeconds * 1e6) / jobIds.length,
    wallUs: (wallMs * 1000) / jobIds.length,
  };
}

/** Redis's own CPU so far (`INFO cpu`: the main thread and its helpers, user + system). */
async function redisCpuSeconds(): Promise<number> {
  const info = await connection.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return field('used_cpu_sys') + field('used_cpu_user');
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |\n`;
  process.stdout.write(line(header) + `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const row of rows) process.stdout.write(line(row));
}
