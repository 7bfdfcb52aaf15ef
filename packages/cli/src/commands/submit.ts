import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { TASK_NAMES } from '@gembatch/contracts';
import { ApiClient } from '../api-client.ts';
import { expandInputs, submitFiles, type SubmitRecord } from '../submit-files.ts';
import { optionFlags } from './client-flags.ts';
import { showUsage } from './usage.ts';

export const SUBMIT_USAGE = `gembatch submit <files or folders...> --task <${TASK_NAMES.join('|')}> [options]
  --out <file>          write results as JSON lines (default: stdout)
  --prompt <text>       instruction for --task prompt
  --option key=value    task option (repeatable; value parsed as JSON when it parses, e.g. labels=["a","b"])
  --max-tokens <n>      generated-token cap
  --json-schema <file>  JSON Schema the output must satisfy
  --password <pw>       password for encrypted PDFs
  --api <url>           API base URL (default: $GEMBATCH_API_URL or http://127.0.0.1:8080)
  --api-key <key>       API key (default: $GEMBATCH_API_KEY)
  --timeout <seconds>   give up waiting after this long (the batch is cancelled)
  --state <file>        upload state, so Ctrl-C and the same command again resumes (default .gembatch/cli-uploads.json)

  The inputs run as one batch (see gembatch batch). Ctrl-C leaves the batch running; the same
  command again uploads only what is missing and waits for the same batch.`;

export const SUBMIT_OPTIONS = {
  task: { type: 'string' },
  out: { type: 'string' },
  prompt: { type: 'string' },
  option: { type: 'string', multiple: true },
  'max-tokens': { type: 'string' },
  'json-schema': { type: 'string' },
  password: { type: 'string' },
  timeout: { type: 'string' },
  state: { type: 'string' },
} as const;

/** Builds the job body (everything but the input) from parsed flags. */
export async function jobBodyFromFlags(values: {
  task?: string;
  prompt?: string;
  option?: string[];
  'max-tokens'?: string;
  'json-schema'?: string;
  password?: string;
}): Promise<Record<string, unknown>> {
  if (!values.task) throw new Error('--task is required');
  const options = optionFlags(values.option);
  const { readFile } = await import('node:fs/promises');
  return {
    task: values.task,
    ...(Object.keys(options).length > 0 ? { options } : {}),
    ...(values.prompt ? { prompt: values.prompt } : {}),
    ...(values['max-tokens'] ? { max_tokens: Number(values['max-tokens']) } : {}),
    ...(values['json-schema'] ? { json_schema: JSON.parse(await readFile(values['json-schema'], 'utf8')) } : {}),
    ...(values.password ? { password: values.password } : {}),
  };
}

/**
 * Runs the inputs as one batch and writes one result line per input, in order. Resolves to
 * undefined when `signal` interrupted it (the batch keeps running; the same command resumes it).
 */
export async function runSubmitWith(
  client: ApiClient,
  server: string,
  inputs: string[],
  job: Record<string, unknown>,
  out: string | undefined,
  timeoutSeconds: string | undefined,
  signal?: AbortSignal,
  statePath?: string,
): Promise<SubmitRecord[] | undefined> {
  const files = await expandInputs(inputs);
  if (files.length === 0) throw new Error('no files to submit');
  const records = await submitFiles({
    client,
    server,
    files,
    job,
    onRecord: () => undefined,
    progress: process.stderr,
    ...(timeoutSeconds ? { timeoutMs: Number(timeoutSeconds) * 1000 } : {}),
    ...(signal ? { signal } : {}),
    ...(statePath ? { statePath } : {}),
  });
  if (!records) return undefined;
  // Opened only now: an interrupted run leaves an earlier results file as it was.
  const sink = out ? createWriteStream(out) : process.stdout;
  for (const record of records) sink.write(`${JSON.stringify(record)}\n`);
  if (out) await new Promise<void>((r) => (sink as NodeJS.WritableStream).end(r));
  return records;
}

export async function runSubmit(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...SUBMIT_OPTIONS, api: { type: 'string' }, 'api-key': { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help || positionals.length === 0) return showUsage(SUBMIT_USAGE, values.help);
  const server = values.api ?? process.env.GEMBATCH_API_URL ?? 'http://127.0.0.1:8080';
  const client = new ApiClient({
    baseUrl: server,
    ...((values['api-key'] ?? process.env.GEMBATCH_API_KEY)
      ? { apiKey: values['api-key'] ?? process.env.GEMBATCH_API_KEY }
      : {}),
  });
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  process.once('SIGINT', interrupt);
  let records: SubmitRecord[] | undefined;
  try {
    records = await runSubmitWith(
      client,
      server,
      positionals,
      await jobBodyFromFlags(values),
      values.out,
      values.timeout,
      controller.signal,
      values.state,
    );
  } finally {
    process.off('SIGINT', interrupt);
  }
  // 130: the shell's code for a command ended by Ctrl-C.
  if (!records) return 130;
  const failed = records.filter((r) => r.status !== 'completed').length;
  process.stderr.write(
    `${records.length - failed} completed, ${failed} failed${values.out ? ` → ${values.out}` : ''}\n`,
  );
  return failed > 0 ? 1 : 0;
}
