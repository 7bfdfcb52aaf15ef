import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { envBytes } from '@gembatch/config';
import { EmbeddedStack, type EmbeddedStackOptions } from '../embedded-stack.ts';
import { errorMessage } from '@gembatch/contracts';

export const UP_USAGE = `gembatch up [options]   start Redis, the API, the workers and the exporter; Ctrl-C stops them
  --port <n>             API port (default 8080)
  --exporter-port <n>    exporter port (default 9464)
  --data-dir <dir>       blobs, models, Redis AOF and logs (default .gembatch)
  --model <path|hf:uri>  model for the worker (default: the Gemma 4 12B quantization that fits)
  --sequences <n>        parallel sequences (default: from memory)
  --workers <n>          worker processes sharing the queue, each its own node (default $GEMBATCH_WORKERS or 1)
  --simulate-vram <list> accelerator memory per worker, e.g. 12GiB,16GiB,32GiB: each plans (and picks
                         its quantization) as if it had that much (default $GEMBATCH_SIMULATE_VRAM)
  --verbose              stream every service's log`;

export const UP_OPTIONS = {
  port: { type: 'string' },
  'exporter-port': { type: 'string' },
  'data-dir': { type: 'string' },
  model: { type: 'string' },
  sequences: { type: 'string' },
  workers: { type: 'string' },
  'simulate-vram': { type: 'string' },
  verbose: { type: 'boolean' },
} as const;

/** Stack options from `up` flags (shared with `run`). */
export function stackOptionsFromFlags(
  values: {
    port?: string;
    'exporter-port'?: string;
    'data-dir'?: string;
    model?: string;
    sequences?: string;
    workers?: string;
    'simulate-vram'?: string;
    verbose?: boolean;
  },
  env: Readonly<Record<string, string | undefined>> = process.env,
): EmbeddedStackOptions {
  const given = values.model ?? env.GEMBATCH_MODEL;
  const workersGiven = values.workers ?? env.GEMBATCH_WORKERS;
  const workers = workersGiven === undefined || workersGiven === '' ? undefined : Number(workersGiven);
  // Why 64: one machine's worth of processes; each loads its own model.
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 1 || workers > 64))
    throw new Error(`--workers must be an integer from 1 to 64, got ${workersGiven}`);
  const simulateVram = parseVramList(values['simulate-vram'] ?? env.GEMBATCH_SIMULATE_VRAM ?? '');
  // Paths are resolved here: the services run with the repository root as their working directory.
  const model = given && !given.startsWith('hf:') ? resolve(given) : given;
  return {
    ...(values.port ? { apiPort: Number(values.port) } : {}),
    ...(values['exporter-port'] ? { exporterPort: Number(values['exporter-port']) } : {}),
    ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
    ...(model ? { model } : {}),
    ...(values.sequences ? { sequences: Number(values.sequences) } : {}),
    ...(workers !== undefined ? { workers } : {}),
    ...(simulateVram.length > 0 ? { simulateVram } : {}),
    verbose: values.verbose ?? false,
  };
}

/**
 * Parses `--simulate-vram` (`12GiB,16GiB,32GiB`): each entry a byte size as `GEMBATCH_VRAM_BYTES`
 * takes it; throws naming the first bad one. An empty string gives `[]`.
 */
export function parseVramList(list: string): string[] {
  const sizes = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const size of sizes) {
    const parsed = envBytes.safeParse(size);
    if (!parsed.success || parsed.data <= 0)
      throw new Error(`--simulate-vram: ${size} is not a byte size such as 12GiB or 24GB`);
  }
  return sizes;
}

export async function runUp(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...UP_OPTIONS, help: { type: 'boolean' } } });
  if (values.help) {
    process.stderr.write(`${UP_USAGE}\n`);
    return 0;
  }
  let options: EmbeddedStackOptions;
  try {
    options = stackOptionsFromFlags(values);
  } catch (error) {
    process.stderr.write(`gembatch up: ${error instanceof Error ? error.message : String(error)}\n${UP_USAGE}\n`);
    return 2;
  }
  const stack = new EmbeddedStack(options);
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      process.stderr.write('\nstopping...\n');
      void stack.stop().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  try {
    const urls = await stack.start();
    process.stderr.write(
      `ready\n  API       ${urls.api}   (docs ${urls.api}/docs)\n  console   ${urls.api}/console\n  metrics   ${urls.exporter}\n  redis     ${urls.redis}\n  logs      ${urls.logs}\nCtrl-C to stop.\n`,
    );
  } catch (error) {
    process.stderr.write(`gembatch up failed: ${errorMessage(error)}\n`);
    await stack.stop();
    return 1;
  }
  await stopped;
  return 0;
}
