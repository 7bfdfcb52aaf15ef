import { createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { ApiClient, BatchObject } from '../api-client.ts';
import { createFilesBatch, createJsonlBatch, FINAL_BATCH_STATUSES, waitForBatch } from '../files-batch.ts';
import { expandInputs } from '../submit-files.ts';
import { CLIENT_OPTIONS, clientFromFlags, pairs } from './client-flags.ts';
import { jobBodyFromFlags, SUBMIT_OPTIONS } from './submit.ts';
import { showUsage } from './usage.ts';

export const BATCH_USAGE = `gembatch batch <command>   batches in the OpenAI Batch API's shapes (see /v1/batches)
  create <input.jsonl | files... | folders...> [options]
      A .jsonl file is uploaded as the batch input (lines {custom_id, method, url, body});
      files and folders become one request each (custom_id = the path): /v1/jobs with --task, or
      with --endpoint /v1/chat/completions one user message of --prompt plus the file [--model m].
      --endpoint </v1/jobs|/v1/chat/completions>  (a .jsonl input: default its first line's url)
      --task, --option k=v, --prompt, --max-tokens, --json-schema, --password   as for gembatch submit
      --completion-window <24h>   --metadata k=v (repeatable)   --webhook <url>
      --wait                      follow it with a live progress bar (done/failed/total, tok/s, ETA)
      --state <file>              upload state for resuming (default .gembatch/cli-uploads.json)
  status <id>            the batch object (JSON)
  wait <id>              follow a batch with the progress bar until it ends
  list [--limit n] [--after id]
  output <id> [--out f]  results so far, JSONL in input order (readable while it runs)
  errors <id> [--out f]  failed requests so far, JSONL
  cancel <id>
  Every command takes --api <url> and --api-key <key> (default $GEMBATCH_API_URL, $GEMBATCH_API_KEY).`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  ...SUBMIT_OPTIONS,
  endpoint: { type: 'string' },
  model: { type: 'string' },
  'completion-window': { type: 'string' },
  metadata: { type: 'string', multiple: true },
  webhook: { type: 'string' },
  wait: { type: 'boolean' },
  limit: { type: 'string' },
  after: { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** `gembatch batch ...`; resolves to the exit code. */
export async function runBatch(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  const [sub, ...args] = positionals;
  if (values.help || !sub) return showUsage(BATCH_USAGE, values.help);
  const { client, server } = clientFromFlags(values);
  const id = () => {
    if (!args[0]) throw new Error(`gembatch batch ${sub} <batch id>`);
    return args[0];
  };
  switch (sub) {
    case 'create':
      return create(client, server, args, values, out);
    case 'status':
      out.write(`${JSON.stringify(await client.getBatch(id()), null, 2)}\n`);
      return 0;
    case 'wait':
      return report(await waitForBatch(client, id(), { progress: process.stderr }));
    case 'list': {
      const page = await client.listBatches({
        ...(values.after ? { after: values.after } : {}),
        ...(values.limit ? { limit: Number(values.limit) } : {}),
      });
      out.write(`${'id'.padEnd(40)} ${'status'.padEnd(11)} ${'done/failed/total'.padEnd(19)} created\n`);
      for (const b of page.data)
        out.write(
          `${b.id.padEnd(40)} ${b.status.padEnd(11)} ${`${b.request_counts.completed}/${b.request_counts.failed}/${b.request_counts.total}`.padEnd(19)} ${new Date(b.created_at * 1000).toISOString()}\n`,
        );
      if (page.has_more) out.write(`more: --after ${page.last_id}\n`);
      return 0;
    }
    case 'output':
    case 'errors': {
      const sink = values.out ? createWriteStream(values.out) : out;
      for await (const line of client.batchLines(id(), sub)) sink.write(`${line}\n`);
      if (values.out) await new Promise<void>((r) => (sink as NodeJS.WritableStream).end(r));
      return 0;
    }
    case 'cancel': {
      const batch = await client.cancelBatch(id());
      out.write(`${batch.id} ${batch.status}\n`);
      return 0;
    }
    default:
      process.stderr.write(`unknown batch command: ${sub}\n\n${BATCH_USAGE}\n`);
      return 2;
  }
}

async function create(
  client: ApiClient,
  server: string,
  inputs: string[],
  values: Record<string, unknown> & {
    task?: string;
    prompt?: string;
    model?: string;
    'max-tokens'?: string;
    endpoint?: string;
    'completion-window'?: string;
    metadata?: string[];
    webhook?: string;
    wait?: boolean;
    state?: string;
    timeout?: string;
  },
  out: NodeJS.WritableStream,
): Promise<number> {
  if (inputs.length === 0) throw new Error('gembatch batch create <input.jsonl | files... | folders...>');
  const common = {
    ...(values['completion-window'] ? { completionWindow: values['completion-window'] } : {}),
    ...(pairs(values.metadata, '--metadata') ? { metadata: pairs(values.metadata, '--metadata') } : {}),
    ...(values.webhook ? { webhookUrl: values.webhook } : {}),
  };
  let batch: BatchObject;
  const only = inputs[0] as string;
  if (inputs.length === 1 && only.endsWith('.jsonl') && !values.task && (await stat(only)).isFile()) {
    const jsonl = await readFile(only);
    const endpoint = values.endpoint ?? firstLineUrl(jsonl);
    const created = await createJsonlBatch(client, jsonl, endpoint, {
      ...common,
      server,
      ...(values.state ? { statePath: values.state } : {}),
    });
    // Created and its id printed next: running the command again means another batch.
    await created.settle();
    batch = created.batch;
  } else {
    const files = await expandInputs(inputs);
    if (files.length === 0) throw new Error('no files to submit');
    const chat = values.endpoint === '/v1/chat/completions';
    if (values.endpoint && !chat && values.endpoint !== '/v1/jobs')
      throw new Error('--endpoint must be /v1/jobs or /v1/chat/completions');
    if (chat && !values.prompt)
      throw new Error(
        '--endpoint /v1/chat/completions with files needs --prompt (the instruction sent with each file)',
      );
    const job = chat ? {} : await jobBodyFromFlags(values);
    const created = await createFilesBatch({
      client,
      server,
      files,
      job,
      ...(chat
        ? {
            chat: {
              prompt: values.prompt as string,
              ...(values.model ? { model: values.model } : {}),
              ...(values['max-tokens'] ? { maxTokens: Number(values['max-tokens']) } : {}),
            },
          }
        : {}),
      status: process.stderr,
      ...(values.state ? { statePath: values.state } : {}),
      ...common,
    });
    for (const [index, error] of created.uploadErrors)
      process.stderr.write(`${files[index]}: not uploaded: ${error.code}: ${error.message}\n`);
    if (!created.batch) return 1;
    await created.settle();
    batch = created.batch;
  }
  out.write(`${batch.id}\n`);
  if (!values.wait) return 0;
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  process.once('SIGINT', interrupt);
  try {
    const final = await waitForBatch(client, batch.id, {
      progress: process.stderr,
      signal: controller.signal,
      ...(values.timeout ? { timeoutMs: Number(values.timeout) * 1000 } : {}),
    });
    if (controller.signal.aborted) {
      process.stderr.write(`stopped waiting; ${batch.id} keeps running (gembatch batch wait ${batch.id})\n`);
      return 130;
    }
    return report(final);
  } finally {
    process.off('SIGINT', interrupt);
  }
}

/** Prints where the results are; exit code 0 only for a completed batch without failures. */
function report(batch: BatchObject): number {
  const { total, completed, failed } = batch.request_counts;
  process.stderr.write(
    `${batch.id} ${batch.status}: ${completed}/${total} completed, ${failed} failed${batch.output_file_id ? ` (gembatch batch output ${batch.id})` : ''}\n`,
  );
  if (batch.status === 'failed')
    for (const e of batch.errors?.data ?? [])
      process.stderr.write(`  ${e.line ? `line ${e.line}: ` : ''}${e.code}: ${e.message}\n`);
  return batch.status === 'completed' && failed === 0 ? 0 : FINAL_BATCH_STATUSES.has(batch.status) ? 1 : 3;
}

function firstLineUrl(jsonl: Buffer): string {
  const first = jsonl.toString('utf8', 0, Math.min(jsonl.length, 1 << 20)).split('\n', 1)[0] ?? '';
  try {
    const url = (JSON.parse(first) as { url?: unknown }).url;
    if (typeof url === 'string') return url;
  } catch {
    // Reported below.
  }
  throw new Error('--endpoint is needed: the first line of the input has no url');
}
