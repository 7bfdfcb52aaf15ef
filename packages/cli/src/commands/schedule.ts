import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ApiClient } from '../api-client.ts';
import { waitForBatch } from '../files-batch.ts';
import { CLIENT_OPTIONS, clientFromFlags, optionFlags, pairs } from './client-flags.ts';
import { showUsage } from './usage.ts';

export const SCHEDULE_USAGE = `gembatch schedule <command>   a cron pattern over a folder; each run processes only files it has not seen
  add --cron "<pattern>" --source <folder> --output <folder> (--task <task> [--option k=v] | --endpoint <url> --body <template.json>)
      [--timezone Europe/Paris] [--webhook <url>] [--metadata k=v] [--paused]
      Folders are under the server's GEMBATCH_SCHEDULE_ROOT. In a --body template, "{{file_id}}" is the input file.
  list
  show <id>
  pause <id> | resume <id>
  run <id> [--wait]      run now (skipped if a run of it is still going)
  runs <id> [--limit n]  its runs, with their batch ids
  rm <id>
  Every command takes --api <url> and --api-key <key>.`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  cron: { type: 'string' },
  timezone: { type: 'string' },
  source: { type: 'string' },
  output: { type: 'string' },
  task: { type: 'string' },
  option: { type: 'string', multiple: true },
  endpoint: { type: 'string' },
  body: { type: 'string' },
  webhook: { type: 'string' },
  metadata: { type: 'string', multiple: true },
  paused: { type: 'boolean' },
  wait: { type: 'boolean' },
  limit: { type: 'string' },
  help: { type: 'boolean' },
} as const;

interface ScheduleView {
  id: string;
  cron: string;
  timezone: string;
  status: string;
  source_folder: string;
  output_folder: string;
  task: string | null;
  next_run_at: number | null;
  files_seen: number;
  last_run: RunView | null;
}

interface RunView {
  id: string;
  status: string;
  trigger: string;
  started_at: number;
  files_found: number;
  files_new: number;
  batch_id: string | null;
  request_counts: { total: number; completed: number; failed: number } | null;
  error: { code: string; message: string } | null;
}

/** Run statuses after which nothing changes. */
const FINAL_RUN = new Set(['completed', 'failed', 'cancelled', 'expired', 'skipped']);

/** `gembatch schedule ...`; resolves to the exit code. */
export async function runSchedule(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  const [sub, ...args] = positionals;
  if (values.help || !sub) return showUsage(SCHEDULE_USAGE, values.help);
  const { client } = clientFromFlags(values);
  const id = () => {
    if (!args[0]) throw new Error(`gembatch schedule ${sub} <schedule id>`);
    return encodeURIComponent(args[0]);
  };
  switch (sub) {
    case 'add': {
      if (!values.cron || !values.source || !values.output)
        throw new Error('--cron, --source and --output are required');
      const options = optionFlags(values.option);
      const body = {
        cron: values.cron,
        source_folder: values.source,
        output_folder: values.output,
        ...(values.timezone ? { timezone: values.timezone } : {}),
        ...(values.task ? { task: values.task } : {}),
        ...(Object.keys(options).length > 0 ? { options } : {}),
        ...(values.endpoint ? { endpoint: values.endpoint } : {}),
        ...(values.body ? { body: JSON.parse(await readFile(values.body, 'utf8')) as unknown } : {}),
        ...(values.webhook ? { webhook: { url: values.webhook } } : {}),
        ...(pairs(values.metadata, '--metadata') ? { metadata: pairs(values.metadata, '--metadata') } : {}),
        ...(values.paused ? { paused: true } : {}),
      };
      const view = await client.call<ScheduleView>('POST', '/v1/schedules', body);
      out.write(`${view.id}\n`);
      process.stderr.write(`${describe(view)}\n`);
      return 0;
    }
    case 'list': {
      const { data } = await client.call<{ data: ScheduleView[] }>('GET', '/v1/schedules?limit=100');
      for (const view of data) out.write(`${describe(view)}\n`);
      return 0;
    }
    case 'show':
      out.write(`${JSON.stringify(await client.call('GET', `/v1/schedules/${id()}`), null, 2)}\n`);
      return 0;
    case 'pause':
    case 'resume':
      out.write(`${describe(await client.call<ScheduleView>('POST', `/v1/schedules/${id()}/${sub}`))}\n`);
      return 0;
    case 'rm':
      await client.call('DELETE', `/v1/schedules/${id()}`);
      out.write(`deleted ${args[0]}\n`);
      return 0;
    case 'runs': {
      const { data } = await client.call<{ data: RunView[] }>(
        'GET',
        `/v1/schedules/${id()}/runs?limit=${Number(values.limit ?? 20)}`,
      );
      for (const run of data) out.write(`${describeRun(run)}\n`);
      return 0;
    }
    case 'run': {
      const run = await client.call<RunView>('POST', `/v1/schedules/${id()}/run`);
      out.write(`${run.id}\n`);
      if (!values.wait) return 0;
      const final = await waitForRun(client, id(), run.id);
      process.stderr.write(`${describeRun(final)}\n`);
      return final.status === 'completed' && (final.request_counts?.failed ?? 0) === 0 ? 0 : 1;
    }
    default:
      process.stderr.write(`unknown schedule command: ${sub}\n\n${SCHEDULE_USAGE}\n`);
      return 2;
  }
}

/** Follows a run: first until it has a batch (progress bar on it), then until the run ends. */
async function waitForRun(client: ApiClient, scheduleId: string, runId: string): Promise<RunView> {
  let followed = false;
  for (;;) {
    const { data } = await client.call<{ data: RunView[] }>('GET', `/v1/schedules/${scheduleId}/runs?limit=100`);
    const run = data.find((r) => r.id === runId);
    if (run && FINAL_RUN.has(run.status)) return run;
    if (run?.batch_id && !followed) {
      followed = true;
      await waitForBatch(client, run.batch_id, { progress: process.stderr });
    }
    // Why 500 ms: a run writes its outputs within moments of its batch ending.
    await delay(500);
  }
}

function describe(view: ScheduleView): string {
  const next = view.next_run_at ? new Date(view.next_run_at * 1000).toISOString() : '-';
  return `${view.id}  ${view.status.padEnd(6)}  "${view.cron}" ${view.timezone}  ${view.source_folder} → ${view.output_folder}  ${view.task ?? 'template'}  next ${next}  seen ${view.files_seen}${view.last_run ? `  last ${view.last_run.status}` : ''}`;
}

function describeRun(run: RunView): string {
  const counts = run.request_counts
    ? ` ${run.request_counts.completed}/${run.request_counts.total} completed, ${run.request_counts.failed} failed`
    : '';
  return `${run.id}  ${run.status.padEnd(9)} ${run.trigger.padEnd(6)} ${new Date(run.started_at * 1000).toISOString()}  files ${run.files_new} new of ${run.files_found}  batch ${run.batch_id ?? '-'}${counts}${run.error ? `  ${run.error.code}: ${run.error.message}` : ''}`;
}
