import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { GembatchError, errorMessage } from '@gembatch/contracts';
import { QUEUE_STATES, parsePrometheusText, selectSamples, type ParsedMetrics } from '@gembatch/telemetry';

const TOP_USAGE = `gembatch top [options]   a live terminal view of the fleet (from the exporter's /metrics)
  --url <url>            exporter metrics URL (default $GEMBATCH_EXPORTER_URL or http://127.0.0.1:9464/metrics)
  --interval <seconds>   refresh period (default 2)
  --once                 print one view and exit (scripts, tests)`;

/** Where `gembatch up` serves the fleet metrics. */
const DEFAULT_TOP_URL = 'http://127.0.0.1:9464/metrics';
/** Refresh period: the nodes publish every 2 s, so faster shows nothing new. */
const DEFAULT_INTERVAL_S = 2;
/** Bound on one scrape: the exporter itself answers within 5 s even when Redis hangs. */
const FETCH_TIMEOUT_MS = 8_000;

export interface RunTopOptions {
  /** Stops the refresh loop; `runTop` then resolves 0. Defaults to none (runs until the process ends). */
  signal?: AbortSignal;
  /** Where errors of `--once` and usage problems go. Defaults to `process.stderr`. */
  err?: NodeJS.WritableStream;
  /** Environment read for `GEMBATCH_EXPORTER_URL`. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** One node's row. */
interface NodeRow {
  node: string;
  model: string;
  quant: string;
  gpu: string;
  generationTokensPerSecond: number;
  promptTokensPerSecond: number;
  activeSequences: number;
  sequences: number;
  vramUsedBytes: number;
  vramTotalBytes: number;
  ramUsedBytes: number;
  generationTokensTotal: number;
}

/** What `top` shows, read from one scrape. */
interface FleetView {
  redisUp: boolean;
  nodes: NodeRow[];
  /** Queue → state → jobs. */
  queues: Map<string, Map<string, number>>;
  jobsCompleted: number;
  jobsFailed: number;
  /** Error code → failed jobs, most frequent first. */
  errors: Array<[code: string, count: number]>;
}

/** Builds the view from a parsed exposition of the exporter. */
function buildFleetView(metrics: ParsedMetrics): FleetView {
  const byNode = (name: string, labels: Record<string, string> = {}): Map<string, number> =>
    new Map(selectSamples(metrics, name, labels).map((s) => [s.labels.node ?? '', s.value]));
  const gen = byNode('gembatch_node_generation_tokens_per_second');
  const prompt = byNode('gembatch_node_prompt_tokens_per_second');
  const active = byNode('gembatch_node_active_sequences');
  const sequences = byNode('gembatch_node_sequences');
  const vramUsed = byNode('gembatch_node_memory_bytes', { kind: 'vram_used' });
  const vramTotal = byNode('gembatch_node_memory_bytes', { kind: 'vram_total' });
  const ramUsed = byNode('gembatch_node_memory_bytes', { kind: 'ram_used' });
  const tokens = byNode('gembatch_generation_tokens_total');
  const nodes = selectSamples(metrics, 'gembatch_node_info')
    .map(({ labels }): NodeRow => {
      const node = labels.node ?? '';
      return {
        node,
        model: labels.model ?? '',
        quant: labels.quant ?? '',
        gpu: labels.gpu ?? '',
        generationTokensPerSecond: gen.get(node) ?? 0,
        promptTokensPerSecond: prompt.get(node) ?? 0,
        activeSequences: active.get(node) ?? 0,
        sequences: sequences.get(node) ?? 0,
        vramUsedBytes: vramUsed.get(node) ?? 0,
        vramTotalBytes: vramTotal.get(node) ?? 0,
        ramUsedBytes: ramUsed.get(node) ?? 0,
        generationTokensTotal: tokens.get(node) ?? 0,
      };
    })
    .sort((a, b) => a.node.localeCompare(b.node));
  const queues = new Map<string, Map<string, number>>();
  for (const sample of selectSamples(metrics, 'gembatch_queue_jobs')) {
    const queue = sample.labels.queue ?? '';
    if (!queues.has(queue)) queues.set(queue, new Map());
    queues.get(queue)?.set(sample.labels.state ?? '', sample.value);
  }
  const jobs = (outcome: string) =>
    selectSamples(metrics, 'gembatch_jobs_total', { outcome }).reduce((sum, s) => sum + s.value, 0);
  const errors = selectSamples(metrics, 'gembatch_errors_total')
    .map((s): [string, number] => [s.labels.code ?? '', s.value])
    .sort((a, b) => b[1] - a[1]);
  return {
    redisUp: selectSamples(metrics, 'gembatch_exporter_redis_up')[0]?.value !== 0,
    nodes,
    queues,
    jobsCompleted: jobs('completed'),
    jobsFailed: jobs('failed'),
    errors,
  };
}

function bytes(value: number): string {
  if (value <= 0) return '-';
  const gib = value / 1024 ** 3;
  return gib >= 1 ? `${gib.toFixed(1)}G` : `${(value / 1024 ** 2).toFixed(0)}M`;
}

function rate(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        rightAligned.has(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Renders the view as plain text (no colours, so it reads the same in a pipe). */
function renderFleetView(view: FleetView, source: string, at: Date): string {
  const lines: string[] = [];
  const fleetGen = view.nodes.reduce((sum, n) => sum + n.generationTokensPerSecond, 0);
  const fleetPrompt = view.nodes.reduce((sum, n) => sum + n.promptTokensPerSecond, 0);
  const activeSeq = view.nodes.reduce((sum, n) => sum + n.activeSequences, 0);
  const capacity = view.nodes.reduce((sum, n) => sum + n.sequences, 0);
  lines.push(`gembatch top — ${source} — ${at.toISOString().slice(11, 19)} UTC`);
  if (!view.redisUp) lines.push('!! the exporter cannot read Redis: no fleet data');
  lines.push(
    `fleet: ${view.nodes.length} node${view.nodes.length === 1 ? '' : 's'}  gen ${rate(fleetGen)} tok/s  prompt ${rate(fleetPrompt)} tok/s  sequences ${activeSeq}/${capacity}  jobs ${view.jobsCompleted} completed, ${view.jobsFailed} failed`,
  );
  lines.push('');
  if (view.nodes.length === 0) lines.push('no live worker nodes');
  else {
    lines.push(
      ...table(
        ['NODE', 'MODEL', 'QUANT', 'GEN TOK/S', 'PROMPT TOK/S', 'SEQ', 'VRAM', 'RAM', 'TOKENS'],
        view.nodes.map((n) => [
          n.node,
          n.model,
          n.quant,
          rate(n.generationTokensPerSecond),
          rate(n.promptTokensPerSecond),
          `${n.activeSequences}/${n.sequences}`,
          n.vramTotalBytes > 0 ? `${bytes(n.vramUsedBytes)}/${bytes(n.vramTotalBytes)}` : '-',
          bytes(n.ramUsedBytes),
          String(n.generationTokensTotal),
        ]),
        new Set([3, 4, 5, 6, 7, 8]),
      ),
    );
  }
  lines.push('');
  if (view.queues.size > 0) {
    lines.push(
      ...table(
        ['QUEUE', ...QUEUE_STATES.map((state) => state.toUpperCase())],
        [...view.queues].map(([queue, states]) => [
          queue,
          ...QUEUE_STATES.map((state) => String(states.get(state) ?? 0)),
        ]),
        new Set(QUEUE_STATES.map((_, index) => index + 1)),
      ),
    );
  }
  if (view.errors.length > 0) {
    lines.push('');
    // Five codes are enough to see what is failing; the dashboard has the rest.
    lines.push(
      `errors: ${view.errors
        .slice(0, 5)
        .map(([code, count]) => `${code} ${count}`)
        .join('  ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function scrapeView(url: string, signal: AbortSignal | undefined): Promise<FleetView> {
  const timeout = AbortSignal.timeout(FETCH_TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new GembatchError(
      'GB_ERR_SERVICE_UNAVAILABLE',
      `cannot reach the exporter at ${url} (${errorMessage(error)}); is \`gembatch up\` running?`,
      { cause: error },
    );
  }
  if (!response.ok)
    throw new GembatchError('GB_ERR_SERVICE_UNAVAILABLE', `the exporter at ${url} answered HTTP ${response.status}`);
  return buildFleetView(parsePrometheusText(await response.text()));
}

/**
 * `gembatch top`: scrapes the exporter and prints per-node tok/s, sequences and memory plus the
 * queue depths, every `--interval` seconds (clearing the screen on a terminal), or once with
 * `--once`. Resolves to the exit code: 0, 1 when `--once` cannot read the exporter, 2 on bad flags.
 */
export async function runTop(argv: string[], out: NodeJS.WritableStream, options: RunTopOptions = {}): Promise<number> {
  const err = options.err ?? process.stderr;
  let values: { url?: string; interval?: string; once?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        interval: { type: 'string' },
        once: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    err.write(`${errorMessage(error)}\n${TOP_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    out.write(`${TOP_USAGE}\n`);
    return 0;
  }
  const url = values.url ?? (options.env ?? process.env).GEMBATCH_EXPORTER_URL ?? DEFAULT_TOP_URL;
  const interval = values.interval === undefined ? DEFAULT_INTERVAL_S : Number(values.interval);
  // A tenth of a second is the fastest refresh that still leaves the exporter idle most of the time.
  if (!Number.isFinite(interval) || interval < 0.1) {
    err.write(`--interval must be a number of seconds ≥ 0.1\n${TOP_USAGE}\n`);
    return 2;
  }
  try {
    new URL(url);
  } catch {
    err.write(`--url must be a URL such as ${DEFAULT_TOP_URL}\n`);
    return 2;
  }

  if (values.once) {
    try {
      out.write(renderFleetView(await scrapeView(url, options.signal), url, new Date()));
      return 0;
    } catch (error) {
      err.write(`gembatch top: ${errorMessage(error)}\n`);
      return 1;
    }
  }

  const clear = (out as { isTTY?: boolean }).isTTY ? '\x1b[2J\x1b[H' : '';
  const signal = options.signal;
  while (!signal?.aborted) {
    let frame: string;
    try {
      frame = renderFleetView(await scrapeView(url, signal), url, new Date());
    } catch (error) {
      if (signal?.aborted) break;
      frame = `gembatch top — ${url} — ${new Date().toISOString().slice(11, 19)} UTC\n${errorMessage(error)}\nretrying every ${interval} s\n`;
    }
    out.write(`${clear}${frame}`);
    try {
      await delay(interval * 1000, undefined, signal ? { signal } : {});
    } catch {
      break;
    }
  }
  return 0;
}
