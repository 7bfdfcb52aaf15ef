import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedStack, type EmbeddedStackOptions } from '../embedded-stack.ts';
import { errorMessage } from '@gembatch/contracts';

export const UP_USAGE = `gembatch up [options]   start Redis, the API, one worker and the exporter; Ctrl-C stops them
  --port <n>             API port (default 8080)
  --exporter-port <n>    exporter port (default 9464)
  --data-dir <dir>       blobs, models, Redis AOF and logs (default .gembatch)
  --model <path|hf:uri>  model for the worker (default: the Gemma 4 12B quantization that fits)
  --sequences <n>        parallel sequences (default: from memory)
  --verbose              stream every service's log`;

export const UP_OPTIONS = {
  port: { type: 'string' },
  'exporter-port': { type: 'string' },
  'data-dir': { type: 'string' },
  model: { type: 'string' },
  sequences: { type: 'string' },
  verbose: { type: 'boolean' },
} as const;

/** Stack options from `up` flags (shared with `run`). */
export function stackOptionsFromFlags(values: { port?: string; 'exporter-port'?: string; 'data-dir'?: string; model?: string; sequences?: string; verbose?: boolean }): EmbeddedStackOptions {
  const given = values.model ?? process.env.GEMBATCH_MODEL;
  // Paths are resolved here: the services run with the repository root as their working directory.
  const model = given && !given.startsWith('hf:') ? resolve(given) : given;
  return {
    ...(values.port ? { apiPort: Number(values.port) } : {}),
    ...(values['exporter-port'] ? { exporterPort: Number(values['exporter-port']) } : {}),
    ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
    ...(model ? { model } : {}),
    ...(values.sequences ? { sequences: Number(values.sequences) } : {}),
    verbose: values.verbose ?? false,
  };
}

export async function runUp(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...UP_OPTIONS, help: { type: 'boolean' } } });
  if (values.help) {
    process.stderr.write(`${UP_USAGE}\n`);
    return 0;
  }
  const stack = new EmbeddedStack(stackOptionsFromFlags(values));
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
    process.stderr.write(`ready\n  API       ${urls.api}   (docs ${urls.api}/docs)\n  metrics   ${urls.exporter}\n  redis     ${urls.redis}\n  logs      ${urls.logs}\nCtrl-C to stop.\n`);
  } catch (error) {
    process.stderr.write(`gembatch up failed: ${errorMessage(error)}\n`);
    await stack.stop();
    return 1;
  }
  await stopped;
  return 0;
}
