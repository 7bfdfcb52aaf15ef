/**
 * Pipeline benchmark: identical requests through the bare engine, the whole stack and llama-server.
 *
 *   pnpm bench:pipeline --model <gguf | bench | tiny> [--sequences 16] [--threads 1] [--requests 192]
 *                       [--tokens 64] [--length-spread 0.5] [--one-token-requests 384] [--workloads distinct,shared]
 *                       [--targets engine,stack,batch] [--llama-server <binary>] [--no-reuse] [--json]
 *                       [--context 1024] [--shared-tokens 520] [--prefill-chunk N] [--prefetch N] [--verbose]
 *                       [--flash-attention auto|on|off] [--server-flash-attention auto|on|off] [--warm-up 0] [--rounds 1]
 *
 * Targets:
 * - `engine`: `createLlamaCppEngine` in this process, S jobs in flight (the worker's concurrency);
 * - `stack`: the embedded stack (redis-server, API, worker, exporter as child processes), driven by
 *   `POST /v1/jobs` (task `prompt`, inline text); a job counts once its result (which carries its
 *   usage and timings) has been read back (`GET /v1/jobs/:id/result`, polled while it answers 409);
 * - `batch`: the same stack (one start for both when both are asked for), driven the bulk way: each
 *   phase is one OpenAI-Batch input file of `/v1/jobs` lines (`POST /v1/files`, `POST /v1/batches`),
 *   polled until it ends; the phase ends when the output file has been read back;
 * - `llama-server` (with `--llama-server <binary>`): llama.cpp's server on the same model, threads
 *   and slot count (`-np S`), driven by S concurrent `/completion` calls with `cache_prompt` on.
 *
 * Every target gets the same prompt text: the `prompt` task's system message and the instruction,
 * then the input, as the engine's completion format joins them (models without a chat template).
 * Greedy decoding everywhere; end-of-generation is not banned (the API cannot ask for that), so
 * tok/s counts the tokens each target really generated.
 *
 * Workloads: `distinct` (each request its own short instruction and input) and `shared` (one
 * instruction of at least 500 tokens, a short document per request). Each runs two phases:
 * `--requests` × `--tokens` generated tokens, then `--one-token-requests` × 1 token.
 *
 * `--rounds N` runs every phase N times with all targets open, the targets taking turns phase by
 * phase (in reverse order every other round), so that ours ÷ theirs compares runs seconds apart, not
 * minutes: this build machine's speed drifts by ±15 % between identical runs. Each round's requests
 * are new ones; a summary gives each ratio's median and range over the rounds.
 *
 * Per-stage breakdown (mean ms per job): http (POST answer), queue_wait (enqueued → a worker took
 * it), extract, prefill (start of generation → first token), decode (first → last token),
 * handoff (worker time outside generation: loading the input, counting tokens), result_store
 * (generation end → job completed in Redis, including storing the result) and read (the request
 * that read the result: the stack's last `GET /v1/jobs/:id/result`, the batch's output file per
 * job); for the stack and batch also ramp (phase start → the first job started on a worker) and
 * tail (the last job finished → the phase's end). Prompt token counts come from the engine's reuse
 * counters (engine, and the stack's node through its exporter) and llama-server's
 * `tokens_evaluated` / `tokens_cached`.
 * The engine's step clock splits each decode step into decode, sampling and scheduling (ms per
 * step; the stack's and batch's from the worker's engine, through the exporter). For the engine
 * target, this process's garbage-collection pauses during each phase are counted too (count, mean,
 * longest): each one stops every sequence's next token.
 *
 * Last, a verdict on issue 13's criteria that the run measures (`bench/acceptance.ts`): each
 * one's median over the rounds, its range, its goal and whether the median meets it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ApiClient, EmbeddedStack } from '@gembatch/cli';
import { findFreePort } from '@gembatch/config';
import {
  TASKS,
  type EngineStats,
  type JobView,
  type StepTimes,
  type TaskPrompt,
  type Timings,
} from '@gembatch/contracts';
import {
  createLlamaCppEngine,
  flashAttentionOption,
  type GenerateRequest,
  type LlamaCppEngine,
} from '@gembatch/inference';
import { ensureTestModel } from '@gembatch/testing/models';
import { findFamily, parsePrometheusFamilies, type PrometheusFamily } from '@gembatch/testing/prometheus-text';
import { acceptance, byTargetWorkloadPhase } from './acceptance.ts';
import { requestText } from './keep-alive-http.ts';
import { withEngineThreadpool } from './engine-threadpool.ts';
import { median } from './median.ts';
import { requestTokens } from './request-lengths.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    sequences: { type: 'string', default: '16' },
    threads: { type: 'string', default: '1' },
    requests: { type: 'string', default: '192' },
    tokens: { type: 'string', default: '64' },
    'length-spread': { type: 'string', default: '0.5' },
    'one-token-requests': { type: 'string', default: '384' },
    workloads: { type: 'string', default: 'distinct,shared' },
    targets: { type: 'string', default: 'engine,stack,batch' },
    context: { type: 'string', default: '1024' },
    'shared-tokens': { type: 'string', default: '520' },
    'llama-server': { type: 'string' },
    'no-reuse': { type: 'boolean', default: false },
    'prefill-chunk': { type: 'string' },
    prefetch: { type: 'string' },
    'warm-up': { type: 'string', default: '0' },
    rounds: { type: 'string', default: '1' },
    'flash-attention': { type: 'string' },
    'server-flash-attention': { type: 'string' },
    json: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
  strict: true,
});

if (!values.model) {
  process.stderr.write(
    'usage: pnpm bench:pipeline --model <gguf | bench | tiny> [--sequences 16] [--threads 1] [--requests 192] [--tokens 64] [--length-spread 0.5] [--one-token-requests 384] [--workloads distinct,shared] [--targets engine,stack,batch] [--llama-server <binary>] [--no-reuse] [--warm-up 0] [--rounds 1] [--json]\n',
  );
  process.exit(2);
}
// The engine target samples on this process's threadpool, as the stack's worker does on its own.
await withEngineThreadpool();
const model = values.model === 'bench' || values.model === 'tiny' ? await ensureTestModel(values.model) : values.model;
const sequences = Number(values.sequences);
const threads = Number(values.threads);
const context = Number(values.context);
const reuse = !values['no-reuse'];
const lengthSpread = Number(values['length-spread']);
if (!(lengthSpread >= 0 && lengthSpread < 1)) {
  process.stderr.write(`--length-spread takes a fraction in [0, 1), not ${values['length-spread']}\n`);
  process.exit(2);
}
const prefillChunk = values['prefill-chunk'] === undefined ? undefined : Number(values['prefill-chunk']);
/** Our flash attention (engine and stack; unset: the engine's default, off on the CPU) and llama-server's `-fa` (unset: its default, auto). */
const flashAttention = onOffAuto('flash-attention');
const serverFlashAttention = onOffAuto('server-flash-attention');
const workloadNames = values.workloads.split(',').map((w) => w.trim()) as WorkloadName[];
const targets = values.targets.split(',').map((t) => t.trim());
if (values['llama-server'] && !targets.includes('llama-server')) targets.push('llama-server');
const phases: Phase[] = [
  { name: 'generate' as const, requests: Number(values.requests), maxTokens: Number(values.tokens) },
  { name: 'one-token' as const, requests: Number(values['one-token-requests']), maxTokens: 1 },
].filter((p) => p.requests > 0);
/**
 * One-token jobs of distinct prompts that each target runs, unmeasured, before its phases: the
 * steady state a long bulk run lives in. Why it matters here: on this build machine's VM, the
 * stack's first ~1,500 jobs cost its processes 30–50 % more CPU than later ones (new memory is slow
 * to touch the first time), which the engine, one process that allocates little, hardly pays.
 */
const warmUp: Phase = { name: 'one-token', requests: Number(values['warm-up']), maxTokens: 1 };
/** Times every phase runs (see the header). */
const rounds = Number(values.rounds);
const log = (line: string) => void (values.json ? process.stderr : process.stdout).write(`${line}\n`);

/** A row's garbage-collection pauses for the inter-token line (engine target only). */
function gcPauses(r: Row): string {
  if (!r.gc_pauses) return '';
  const { count, mean_ms, max_ms } = r.gc_pauses;
  return `; GC pauses ${count} (mean ${mean_ms} ms, longest ${max_ms} ms)`;
}

function onOffAuto(option: 'flash-attention' | 'server-flash-attention'): 'auto' | 'on' | 'off' | undefined {
  const value = values[option];
  if (value === undefined || value === 'auto' || value === 'on' || value === 'off') return value;
  process.stderr.write(`--${option} takes auto, on or off, not ${value}\n`);
  process.exit(2);
}

type WorkloadName = 'distinct' | 'shared';
interface Phase {
  name: 'generate' | 'one-token';
  requests: number;
  maxTokens: number;
}
/** One request: the `prompt` task's instruction, the inline input and the tokens to generate at most. */
interface BenchRequest {
  instruction: string;
  input: string;
  maxTokens: number;
}
/** Mean ms per job in each stage; absent stages do not apply to the target. */
type Stages = Partial<
  Record<'http' | 'queue_wait' | 'extract' | 'prefill' | 'decode' | 'handoff' | 'result_store' | 'read', number>
>;
interface Row {
  target: string;
  /** 1-based, with `--rounds`. */
  round: number;
  workload: WorkloadName;
  phase: Phase['name'];
  requests: number;
  max_tokens: number;
  sequences: number;
  wall_s: number;
  jobs_s: number;
  tok_s: number;
  generated_tokens: number;
  prompt_tokens_per_job: number;
  prompt_tokens_evaluated: number | null;
  prompt_tokens_reused: number | null;
  stages_ms: Stages;
  /** Inter-token gaps while jobs keep arriving (every sequence decoding beside joining jobs): median and p99 (ms). */
  itl_p50_ms?: number;
  itl_p99_ms?: number;
  /**
   * Steady state: the median gap of the first wave once all of it is decoding and before any job
   * joins (no prefill in those steps). The issue's target is `itl_p99_ms` ≤ 2× this.
   */
  itl_steady_ms?: number;
  /** Engine target: this process's garbage-collection pauses during the phase (count, mean and longest ms). */
  gc_pauses?: { count: number; mean_ms: number; max_ms: number };
  /** The engine's time per decode step (ms, means over the phase), by the engine's step clock (`StepTimes`). */
  step_ms?: { decode: number; sampling: number; scheduling: number };
  /**
   * Stack and batch: ms from the phase's start to its first job starting on a worker (`ramp`) and
   * from its last job finishing to the phase's end (`tail`: seeing it done, reading the result).
   */
  edges_ms?: { ramp: number; tail: number };
  /** Decode steps the engine ran in the phase. */
  decode_steps?: number;
  /** CPU ms per job of each process: the engine's (this process), the stack's (api, worker, redis, exporter, and this client), or llama-server's (and this client). */
  cpu_ms_per_job?: Record<string, number>;
  vs_llama_server?: { tok_s: number; jobs_s: number };
  vs_engine?: { tok_s: number; jobs_s: number };
}

/** Sentences of the shared instruction: plain English, repeated until the prompt is long enough. */
const SHARED_SENTENCES = [
  'You are given one short document from a large collection of customer letters, notes and forms.',
  'Read it carefully and write a short continuation in the same voice, as if you were its author.',
  'Keep the names, dates, numbers and places exactly as written in the document, and never invent new ones.',
  'Do not repeat the document, do not explain what you are doing, and do not address the reader directly.',
  'If the document is a form, continue with the next field that would naturally follow the last one.',
  'If the document is a letter, continue the letter with the next sentence the writer would write.',
  'If the document is a note, continue the note in the same short style, with the same abbreviations.',
  'Write plain text only: no lists, no headings, no quotation marks around the answer, no markup of any kind.',
];
/** Prompt tokens the shared workload's prompts reach at least (the issue asks for ≥ 500). */
const SHARED_PROMPT_TOKENS = Number(values['shared-tokens']);

/** The shared instruction: sentences added until a whole prompt takes `SHARED_PROMPT_TOKENS` in this model. */
async function sharedInstruction(): Promise<string> {
  const counter = await createLlamaCppEngine({
    modelPath: model,
    sequences: 1,
    contextPerSequence: 256,
    threads,
    gpu: false,
  });
  try {
    const sentences: string[] = [];
    for (let i = 0; ; i++) {
      sentences.push(SHARED_SENTENCES[i % SHARED_SENTENCES.length] as string);
      const instruction = sentences.join(' ');
      const tokens = await counter.countPromptTokens(
        engineRequest({
          instruction,
          input: workload('distinct', { requests: 1, maxTokens: 1 }, 0, '')[0]?.input ?? '',
          maxTokens: 1,
        }),
      );
      if (tokens >= SHARED_PROMPT_TOKENS) return instruction;
    }
  } finally {
    await counter.close();
  }
}

/**
 * The requests of one phase. `first` numbers them on from the previous phases: a request that
 * repeats an earlier one would let llama-server restore its whole prompt from its RAM prompt cache
 * (`--cache-ram`, on by default), which no real batch of distinct documents gets.
 */
function workload(
  name: WorkloadName,
  phase: Pick<Phase, 'requests' | 'maxTokens'>,
  first = 0,
  instruction = SHARED,
): BenchRequest[] {
  return Array.from({ length: phase.requests }, (_, j) => j + first).map((i) => ({
    ...(name === 'shared'
      ? { instruction, input: `Note ${i}: the parcel ${i * 7 + 3} left the depot in Leeds on Monday and` }
      : {
          instruction: `Story ${i}: write what happens next.`,
          input: `Once upon a time, girl number ${i} found a box that`,
        }),
    maxTokens: requestTokens(phase.maxTokens, lengthSpread, i),
  }));
}

/** Where a phase's request numbers start in a round (0-based): after the requests of earlier rounds and phases. */
function firstRequest(phase: Phase, round: number): number {
  const perRound = phases.reduce((sum, p) => sum + p.requests, 0);
  let start = round * perRound;
  for (const p of phases) {
    if (p === phase) break;
    start += p.requests;
  }
  return start;
}

/** Where the warm-up's request numbers start: after every round's. */
function warmUpFirst(): number {
  return rounds * phases.reduce((sum, p) => sum + p.requests, 0);
}

/** The request the worker builds for task `prompt` (services/worker task-runner). */
function engineRequest(request: BenchRequest): GenerateRequest {
  return {
    prompt: TASKS.prompt.prompt({ instruction: request.instruction }),
    input: request.input,
    maxTokens: request.maxTokens,
    thinking: TASKS.prompt.thinking,
  };
}

/** The completion-mode prompt text the engine builds for a model without a chat template. */
function promptText(request: BenchRequest): string {
  const prompt: TaskPrompt = TASKS.prompt.prompt({ instruction: request.instruction });
  return (
    [prompt.system, prompt.instruction, request.input].filter((part) => part.trim() !== '').join('\n\n') +
    prompt.completionCue
  );
}

/** Runs `work` over `items` with at most `limit` in flight, in order. */
async function pool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index] as T, index);
      }
    }),
  );
  return results;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

// ---------------------------------------------------------------- engine

/**
 * A target opened for the whole run. It runs one phase at a time, so that with `--rounds` the
 * targets take turns phase by phase.
 */
interface Target {
  name: string;
  /** One phase over requests numbered from `first`. */
  phase(workloadName: WorkloadName, phase: Phase, first: number): Promise<Row>;
}

/** Targets opened together (`stack` and `batch` share one stack) and how to close them. */
interface Opened {
  targets: Target[];
  close(): Promise<void>;
}

async function openEngine(): Promise<Opened> {
  const engine = await createLlamaCppEngine({
    modelPath: model,
    sequences,
    contextPerSequence: context,
    threads,
    gpu: false,
    prefixReuse: reuse,
    ...(prefillChunk !== undefined ? { prefillChunkTokens: prefillChunk } : {}),
    ...(flashAttention !== undefined ? { flashAttention: flashAttentionOption(flashAttention) } : {}),
  });
  try {
    await engine.generate(engineRequest({ instruction: 'warm up', input: 'warm up', maxTokens: 4 }));
    if (warmUp.requests > 0) await enginePhase(engine, 'distinct', warmUp, warmUpFirst());
  } catch (error) {
    await engine.close();
    throw error;
  }
  return {
    targets: [{ name: 'engine', phase: (name, phase, first) => enginePhase(engine, name, phase, first) }],
    close: () => engine.close(),
  };
}

async function enginePhase(engine: LlamaCppEngine, name: WorkloadName, phase: Phase, first: number): Promise<Row> {
  const requests = workload(name, phase, first);
  const before = engine.stats();
  const cpuBefore = process.cpuUsage();
  const pauses: number[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push(entry.duration);
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const started = performance.now();
  const gaps: number[] = [];
  const waves = engine.info.sequences;
  // The first wave's gaps with their times, its first tokens, and when its first job ended.
  const firstWaveGaps: Array<{ at: number; gap: number }> = [];
  let firstWaveStarted = 0;
  let firstWaveFirstDone = Number.POSITIVE_INFINITY;
  const results = await pool(requests, waves, async (request, index) => {
    let last = 0;
    // Gaps once jobs join: every gap of a later job, and a first-wave job's gaps after the first
    // of its wave ended (the wave starts together, with nothing decoding to protect; once its
    // first job ends, its survivors decode beside the jobs that join them, and a joining prompt
    // that stalls them must count: leaving those gaps out hid a 509-token step).
    const onToken = () => {
      const now = performance.now();
      if (last > 0 && (index >= waves || last >= firstWaveFirstDone)) gaps.push(now - last);
      if (last > 0 && index < waves) firstWaveGaps.push({ at: now, gap: now - last });
      if (last === 0 && index < waves) firstWaveStarted = Math.max(firstWaveStarted, now);
      last = now;
    };
    const result = await engine.generate({ ...engineRequest(request), onToken });
    if (index < waves) firstWaveFirstDone = Math.min(firstWaveFirstDone, performance.now());
    return result;
  });
  // Gaps that ended after the whole wave had its first token and before a job could join (a step
  // may still hold a late sequence's last prompt chunk: the first gap after that is skipped too).
  const steady = firstWaveGaps
    .filter((g) => g.at - g.gap > firstWaveStarted && g.at < firstWaveFirstDone)
    .map((g) => g.gap);
  steady.sort((a, b) => a - b);
  const wall = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  for (const entry of gcObserver.takeRecords()) pauses.push(entry.duration);
  gcObserver.disconnect();
  const after = engine.stats();
  gaps.sort((a, b) => a - b);
  const percentile = (q: number) => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))] ?? 0;
  const generated = results.reduce((sum, r) => sum + r.generatedTokens, 0);
  return {
    ...rowBase('engine', name, phase, wall, generated, mean(results.map((r) => r.promptTokens))),
    prompt_tokens_evaluated: (after.promptTokensEvaluatedTotal ?? 0) - (before.promptTokensEvaluatedTotal ?? 0),
    prompt_tokens_reused: (after.promptTokensReusedTotal ?? 0) - (before.promptTokensReusedTotal ?? 0),
    stages_ms: {
      prefill: round(mean(results.map((r) => r.timeToFirstTokenMs ?? r.totalMs))),
      decode: round(mean(results.map((r) => r.totalMs - (r.timeToFirstTokenMs ?? r.totalMs)))),
    },
    cpu_ms_per_job: { engine: round((cpu.user + cpu.system) / 1000 / phase.requests, 1) },
    ...(gaps.length > 0 ? { itl_p50_ms: round(percentile(0.5)), itl_p99_ms: round(percentile(0.99)) } : {}),
    ...(steady.length > 0 ? { itl_steady_ms: round(steady[Math.floor(steady.length / 2)] ?? 0) } : {}),
    gc_pauses: { count: pauses.length, mean_ms: round(mean(pauses)), max_ms: round(Math.max(0, ...pauses)) },
    ...stepTimes(before, after),
  };
}

/** Mean ms per decode step of each part of the engine's step clock between two reads of its stats. */
function stepTimes(
  before: Pick<EngineStats, 'decodeCallsTotal' | 'stepTimeMsTotal'>,
  after: Pick<EngineStats, 'decodeCallsTotal' | 'stepTimeMsTotal'>,
): Pick<Row, 'step_ms' | 'decode_steps'> {
  const steps = after.decodeCallsTotal - before.decodeCallsTotal;
  const [from, to] = [before.stepTimeMsTotal, after.stepTimeMsTotal];
  if (!from || !to || steps === 0) return {};
  const per = (part: keyof StepTimes) => round((to[part] - from[part]) / steps, 3);
  return {
    step_ms: { decode: per('decode'), sampling: per('sampling'), scheduling: per('scheduling') },
    decode_steps: steps,
  };
}

function rowBase(
  target: string,
  workloadName: WorkloadName,
  phase: Phase,
  wall: number,
  generated: number,
  promptPerJob: number,
): Omit<Row, 'prompt_tokens_evaluated' | 'prompt_tokens_reused' | 'stages_ms'> {
  return {
    target,
    round: 1,
    workload: workloadName,
    phase: phase.name,
    requests: phase.requests,
    max_tokens: phase.maxTokens,
    sequences,
    wall_s: round(wall),
    jobs_s: round(phase.requests / wall),
    tok_s: round(generated / wall),
    generated_tokens: generated,
    prompt_tokens_per_job: round(promptPerJob, 1),
  };
}

// ---------------------------------------------------------------- stack

/** How the stack is driven: a `POST /v1/jobs` per request (`stack`) or one batch per phase (`batch`). */
type SubmitWay = 'stack' | 'batch';

async function openStack(ways: readonly SubmitWay[]): Promise<Opened> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gembatch-bench-'));
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
  const stack = new EmbeddedStack({
    apiPort: await findFreePort(),
    exporterPort: await findFreePort(),
    dataDir,
    model,
    sequences,
    status: values.verbose ? process.stderr : silent,
    verbose: values.verbose,
    env: {
      GEMBATCH_THREADS: String(threads),
      GEMBATCH_GPU: 'cpu',
      GEMBATCH_CONTEXT_PER_SEQUENCE: String(context),
      GEMBATCH_PREFIX_REUSE: String(reuse),
      ...(prefillChunk !== undefined ? { GEMBATCH_PREFILL_CHUNK_TOKENS: String(prefillChunk) } : {}),
      ...(values.prefetch !== undefined ? { GEMBATCH_GENERATE_PREFETCH: values.prefetch } : {}),
      ...(flashAttention !== undefined ? { GEMBATCH_FLASH_ATTENTION: flashAttention } : {}),
      LOG_LEVEL: 'warn',
    },
  });
  const close = async () => {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const urls = await stack.start();
    const cpu = new ProcessCpu(
      Object.fromEntries(['api', 'worker', 'redis', 'exporter'].map((name) => [name, stack.pid(name)])),
    );
    await stackPhase(urls, 'distinct', { name: 'generate', requests: 2, maxTokens: 4 }, warmUpFirst(), async () => {});
    if (warmUp.requests > 0)
      await (ways[0] === 'stack' ? stackPhase : batchPhase)(
        urls,
        'distinct',
        warmUp,
        warmUpFirst() + 2,
        async () => {},
      );
    const targets = ways.map(
      (way): Target => ({
        name: way,
        phase: async (name, phase, first) => {
          const before = await cpu.sample();
          let after: Record<string, number> = {};
          // Sampled when the phase's clock stops, before the client reads the jobs' views for the breakdown.
          const clockStopped = async () => void (after = await cpu.sample());
          const row = await (way === 'stack' ? stackPhase : batchPhase)(urls, name, phase, first, clockStopped);
          row.cpu_ms_per_job = Object.fromEntries(
            Object.keys(after).map((process) => [
              process,
              round(((after[process] ?? 0) - (before[process] ?? 0)) / phase.requests, 1),
            ]),
          );
          return row;
        },
      }),
    );
    return { targets, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * CPU time (user + system, ms) of the stack's processes from `/proc/<pid>/stat` (Linux; empty
 * elsewhere), and of this process (the client) from `process.cpuUsage()`. It says which process
 * takes the 2 cores the engine needs: the stack's overhead is mostly CPU it takes from decoding.
 */
class ProcessCpu {
  readonly #pids: Record<string, number | undefined>;
  constructor(pids: Record<string, number | undefined>) {
    this.#pids = pids;
  }
  async sample(): Promise<Record<string, number>> {
    const sample: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.#pids)) {
      if (pid === undefined) continue;
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
      // Fields 14 and 15 (utime, stime, in clock ticks; 100 per second on Linux) follow the `(comm)` field.
      const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields) sample[name] = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    }
    const own = process.cpuUsage();
    sample.client = (own.user + own.system) / 1000;
    return sample;
  }
}

/** The `POST /v1/jobs` body of one request (a batch line's body too): task `prompt`, inline text. */
function jobBody(request: BenchRequest): Record<string, unknown> {
  return { task: 'prompt', prompt: request.instruction || ' ', text: request.input, max_tokens: request.maxTokens };
}

interface StackJob {
  id: string;
  postMs: number;
  readMs: number;
}

/** HTTP requests the client keeps in flight while submitting (a batch script's usual fan-out). */
const SUBMIT_CONCURRENCY = 16;
/**
 * How often the client looks for the next completed job. Why 100 ms: faster polling would make the API
 * process take CPU from the worker on a small machine, and a phase's wall time
 * grows by at most one period.
 */
const POLL_MS = 100;

async function stackPhase(
  urls: { api: string; exporter: string },
  name: WorkloadName,
  phase: Phase,
  first: number,
  clockStopped: () => Promise<void>,
): Promise<Row> {
  const requests = workload(name, phase, first);
  const before = await promptCounters(urls.exporter);
  const started = performance.now();
  const startedAtMs = Date.now();
  const submitted: Array<{ id: string; postMs: number }> = await pool(requests, SUBMIT_CONCURRENCY, async (request) => {
    const t0 = performance.now();
    const view = await api<JobView>(urls.api, 'POST', '/v1/jobs', jobBody(request));
    return { id: view.id, postMs: performance.now() - t0 };
  });
  // Jobs finish roughly in submission order: read each one's result in turn. The result document
  // carries the usage and timings, so a done job costs one request; 409 means not yet (its view says
  // whether it failed). Views for the breakdown are read once the clock has stopped, as for batches.
  const jobs: StackJob[] = [];
  for (const { id, postMs } of submitted) {
    for (;;) {
      const t0 = performance.now();
      const { status, text } = await requestText(`${urls.api}/v1/jobs/${id}/result`, 'GET', undefined, 60_000);
      if (status === 200) {
        jobs.push({ id, postMs, readMs: performance.now() - t0 });
        break;
      }
      if (status !== 409) throw new Error(`GET /v1/jobs/${id}/result: HTTP ${status} ${text.slice(0, 300)}`);
      const view = await api<JobView>(urls.api, 'GET', `/v1/jobs/${id}`);
      if (view.status === 'failed' || view.status === 'cancelled')
        throw new Error(`job ${id} ${view.status}: ${view.error?.code ?? ''} ${view.error?.message ?? ''}`);
      if (performance.now() - started > PHASE_TIMEOUT_MS) throw new Error(`job ${id} not done after the phase's time`);
      if (view.status !== 'completed') await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
  const wall = (performance.now() - started) / 1000;
  const endedAtMs = Date.now();
  await clockStopped();
  const views = await pool(jobs, SUBMIT_CONCURRENCY, (job) => api<JobView>(urls.api, 'GET', `/v1/jobs/${job.id}`));
  return stackRow('stack', urls, name, phase, wall, before, views, {
    http: round(mean(jobs.map((j) => j.postMs))),
    read: round(mean(jobs.map((j) => j.readMs))),
    startedAtMs,
    endedAtMs,
  });
}

/**
 * One batch per phase, as a bulk user submits: the requests as `/v1/jobs` lines of one input file,
 * uploaded and turned into a batch, polled until it ends; the phase ends once the output file is
 * read. `http` is the upload and batch creation, `read` the output download, each per job.
 */
async function batchPhase(
  urls: { api: string; exporter: string },
  name: WorkloadName,
  phase: Phase,
  first: number,
  clockStopped: () => Promise<void>,
): Promise<Row> {
  const requests = workload(name, phase, first);
  const before = await promptCounters(urls.exporter);
  const input = requests
    .map((request, i) =>
      JSON.stringify({
        custom_id: `r${i}`,
        method: 'POST',
        url: '/v1/jobs',
        body: jobBody(request),
      }),
    )
    .join('\n');
  const client = new ApiClient({ baseUrl: urls.api });
  const started = performance.now();
  const startedAtMs = Date.now();
  const file = await client.uploadBytes(Buffer.from(input), 'bench.jsonl', 'batch');
  let batch = await client.createBatch({ input_file_id: file.id, endpoint: '/v1/jobs', completion_window: '24h' });
  const submitMs = performance.now() - started;
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    if (performance.now() - started > PHASE_TIMEOUT_MS)
      throw new Error(`batch ${batch.id} not done after the phase's time`);
    await new Promise((resolve) => setTimeout(resolve, BATCH_POLL_MS));
    batch = await client.getBatch(batch.id);
  }
  if (batch.status !== 'completed' || batch.request_counts.failed > 0)
    throw new Error(`batch ${batch.id} ${batch.status}, ${batch.request_counts.failed} failed`);
  const t0 = performance.now();
  const lines: string[] = [];
  for await (const line of client.batchLines(batch.id, 'output')) lines.push(line);
  const readMs = performance.now() - t0;
  const wall = (performance.now() - started) / 1000;
  const endedAtMs = Date.now();
  await clockStopped();
  if (lines.length !== requests.length) throw new Error(`batch ${batch.id}: ${lines.length} output lines`);
  // After the clock stops: each request's job view (timings, usage) for the breakdown.
  const views = await pool(lines, SUBMIT_CONCURRENCY, (line) =>
    client.getJob((JSON.parse(line) as { response: { request_id: string } }).response.request_id),
  );
  return stackRow('batch', urls, name, phase, wall, before, views, {
    http: round(submitMs / requests.length),
    read: round(readMs / requests.length),
    startedAtMs,
    endedAtMs,
  });
}

/** Longest a stack phase may run before the benchmark gives up on it (a dead worker must not hang the run). */
const PHASE_TIMEOUT_MS = 30 * 60_000;

/** How often the batch client reads the batch object: one cheap GET, whatever the batch's size. */
const BATCH_POLL_MS = 100;

/** A stack row from the finished jobs' views: tokens, the node's reuse counters and the per-stage means. */
async function stackRow(
  target: SubmitWay,
  urls: { exporter: string },
  name: WorkloadName,
  phase: Phase,
  wall: number,
  before: NodeCounters | null,
  views: readonly JobView[],
  client: { http: number; read: number; startedAtMs: number; endedAtMs: number },
): Promise<Row> {
  const after = await promptCounters(
    urls.exporter,
    before,
    views.reduce((sum, view) => sum + (view.usage?.prompt_tokens ?? 0), 0),
  );
  const timings = views.map((view) => view.timings as Timings);
  const generated = views.reduce((sum, view) => sum + (view.usage?.generated_tokens ?? 0), 0);
  const perJob = views.map((view, i) => {
    const t = timings[i] as Timings;
    const created = Date.parse(view.created_at);
    const finished = view.finished_at ? Date.parse(view.finished_at) : created + t.total_ms;
    const ttft = t.time_to_first_token_ms ?? t.generate_ms;
    return {
      prefill: ttft,
      decode: t.generate_ms - ttft,
      handoff: Math.max(0, t.total_ms - t.queue_wait_ms - t.extract_ms - t.generate_ms),
      resultStore: Math.max(0, finished - (created + t.total_ms)),
    };
  });
  return {
    ...rowBase(target, name, phase, wall, generated, mean(views.map((view) => view.usage?.prompt_tokens ?? 0))),
    prompt_tokens_evaluated: after ? after.evaluated - (before?.evaluated ?? 0) : null,
    prompt_tokens_reused: after ? after.reused - (before?.reused ?? 0) : null,
    ...stepTimes(
      { decodeCallsTotal: before?.decodeCalls ?? 0, stepTimeMsTotal: before?.stepMs },
      { decodeCallsTotal: after?.decodeCalls ?? 0, stepTimeMsTotal: after?.stepMs },
    ),
    stages_ms: {
      http: client.http,
      queue_wait: round(mean(timings.map((t) => t.queue_wait_ms))),
      extract: round(mean(timings.map((t) => t.extract_ms))),
      prefill: round(mean(perJob.map((p) => p.prefill))),
      decode: round(mean(perJob.map((p) => p.decode))),
      handoff: round(mean(perJob.map((p) => p.handoff))),
      result_store: round(mean(perJob.map((p) => p.resultStore))),
      read: client.read,
    },
    edges_ms: {
      ramp:
        Math.min(...views.map((view) => (view.started_at ? Date.parse(view.started_at) : Infinity))) -
        client.startedAtMs,
      tail: client.endedAtMs - Math.max(...views.map((view) => (view.finished_at ? Date.parse(view.finished_at) : 0))),
    },
  };
}

async function api<T = unknown>(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const { status, text } = await requestText(`${base}${path}`, method, body, 60_000);
  if (status < 200 || status > 299) throw new Error(`${method} ${path}: HTTP ${status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** The fleet's counters the stack rows use, summed over nodes (one node here). */
interface NodeCounters {
  total: number;
  reused: number;
  evaluated: number;
  /** The engine's step clock (ms), when the node reports it. */
  stepMs?: StepTimes;
  decodeCalls?: number;
}

/**
 * The node's prompt-token counters, and its step clock, from the exporter. With `expectedTotalDelta`,
 * waits (≤ 15 s) for a heartbeat that includes this phase's prompt tokens; `null` when the exporter
 * has none.
 */
async function promptCounters(
  exporter: string,
  before?: { total: number } | null,
  expectedTotalDelta?: number,
): Promise<NodeCounters | null> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await fetch(exporter, { signal: AbortSignal.timeout(5_000) })
      .then((r) => r.text())
      .catch(() => '');
    const families = parseOrNone(text);
    /** The sum over nodes of a counter's samples carrying `labels`; `undefined` when there are none. */
    const read = (name: string, labels: Record<string, string> = {}) => {
      const family = findFamily(families, name);
      if (!family || family.type === 'histogram' || family.type === 'summary') return undefined;
      const samples = family.metrics.filter((sample) =>
        Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
      );
      return samples.length === 0 ? undefined : samples.reduce((sum, sample) => sum + sample.value, 0);
    };
    const total = read('gembatch_prompt_tokens_total');
    const reused = read('gembatch_prompt_tokens_reused_total');
    const evaluated = read('gembatch_prompt_tokens_evaluated_total');
    const stepSeconds = (part: keyof StepTimes) => read('gembatch_node_step_seconds_total', { part });
    const [decode, sampling, scheduling] = [stepSeconds('decode'), stepSeconds('sampling'), stepSeconds('scheduling')];
    const decodeCalls = read('gembatch_node_decode_calls_total');
    const counters =
      total === undefined || reused === undefined || evaluated === undefined
        ? null
        : {
            total,
            reused,
            evaluated,
            ...(decode !== undefined && sampling !== undefined && scheduling !== undefined
              ? { stepMs: { decode: decode * 1000, sampling: sampling * 1000, scheduling: scheduling * 1000 } }
              : {}),
            ...(decodeCalls !== undefined ? { decodeCalls } : {}),
          };
    if (expectedTotalDelta === undefined) return counters;
    if (counters && counters.total - (before?.total ?? 0) >= expectedTotalDelta) return counters;
    if (Date.now() > deadline) return counters;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The exporter's families; none when the scrape failed or its text does not parse. */
function parseOrNone(text: string): PrometheusFamily[] {
  try {
    return parsePrometheusFamilies(text);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- llama-server

async function openLlamaServer(binary: string): Promise<Opened> {
  const port = await findFreePort();
  // -c is the whole context: `context` tokens for each of the S slots, as our sequences have.
  const args = [
    '-m',
    model,
    '-np',
    String(sequences),
    '-c',
    String(context * sequences),
    '-t',
    String(threads),
    '-tb',
    String(threads),
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--no-webui',
    ...(serverFlashAttention !== undefined ? ['-fa', serverFlashAttention] : []),
  ];
  const server: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-20_000));
  server.stdout?.on('data', keep);
  server.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  const close = async () => {
    server.kill('SIGTERM');
    await exited;
  };
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (server.exitCode !== null)
        throw new Error(`llama-server exited (${server.exitCode}):\n${output.slice(-3000)}`);
      const ok = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`llama-server did not become ready:\n${output.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await completion(base, { instruction: 'warm up', input: 'warm up', maxTokens: 4 });
    if (warmUp.requests > 0)
      await pool(workload('distinct', warmUp, warmUpFirst()), sequences, (request) => completion(base, request));
  } catch (error) {
    await close();
    throw error;
  }
  const cpu = new ProcessCpu({ 'llama-server': server.pid });
  const runPhase = async (name: WorkloadName, phase: Phase, first: number): Promise<Row> => {
    const requests = workload(name, phase, first);
    const cpuBefore = await cpu.sample();
    const started = performance.now();
    const results = await pool(requests, sequences, (request) => completion(base, request));
    const wall = (performance.now() - started) / 1000;
    const cpuAfter = await cpu.sample();
    const generated = results.reduce((sum, r) => sum + r.generated, 0);
    return {
      ...rowBase('llama-server', name, phase, wall, generated, mean(results.map((r) => r.promptTokens))),
      prompt_tokens_evaluated: results.reduce((sum, r) => sum + r.evaluated, 0),
      prompt_tokens_reused: results.reduce((sum, r) => sum + r.cached, 0),
      stages_ms: {
        http: round(mean(results.map((r) => r.overheadMs))),
        prefill: round(mean(results.map((r) => r.prefillMs))),
        decode: round(mean(results.map((r) => r.decodeMs))),
      },
      cpu_ms_per_job: Object.fromEntries(
        Object.keys(cpuAfter).map((name) => [
          name,
          round(((cpuAfter[name] ?? 0) - (cpuBefore[name] ?? 0)) / phase.requests, 1),
        ]),
      ),
    };
  };
  return { targets: [{ name: 'llama-server', phase: runPhase }], close };
}

interface CompletionResult {
  generated: number;
  promptTokens: number;
  evaluated: number;
  cached: number;
  prefillMs: number;
  decodeMs: number;
  overheadMs: number;
}

async function completion(base: string, request: BenchRequest): Promise<CompletionResult> {
  const t0 = performance.now();
  const body = {
    prompt: promptText(request),
    n_predict: request.maxTokens,
    temperature: 0,
    cache_prompt: true,
    stream: false,
  };
  const { status, text } = await requestText(`${base}/completion`, 'POST', body, 600_000);
  if (status !== 200) throw new Error(`llama-server /completion: HTTP ${status} ${text.slice(0, 300)}`);
  const result = JSON.parse(text) as {
    tokens_predicted: number;
    tokens_evaluated: number;
    tokens_cached?: number;
    timings?: { prompt_n: number; prompt_ms: number; predicted_ms: number; cache_n?: number };
  };
  const elapsed = performance.now() - t0;
  const prefillMs = result.timings?.prompt_ms ?? 0;
  const decodeMs = result.timings?.predicted_ms ?? 0;
  const cached = result.timings?.cache_n ?? 0;
  return {
    generated: result.tokens_predicted,
    promptTokens: result.tokens_evaluated,
    evaluated: result.timings?.prompt_n ?? result.tokens_evaluated,
    cached,
    prefillMs,
    decodeMs,
    overheadMs: Math.max(0, elapsed - prefillMs - decodeMs),
  };
}

// ---------------------------------------------------------------- main

const SHARED = workloadNames.includes('shared') ? await sharedInstruction() : '';

const opened: Opened[] = [];
const rows: Row[] = [];
try {
  for (const target of targets) {
    // One stack serves both ways of submitting: started once, for whichever comes first.
    if (target === 'batch' && targets.includes('stack')) continue;
    const fa = target === 'llama-server' ? (serverFlashAttention ?? 'auto') : (flashAttention ?? 'default');
    log(
      `starting ${target} (${model}, ${sequences} sequences, ${threads} thread(s), reuse ${reuse ? 'on' : 'off'}, flash attention ${fa})...`,
    );
    try {
      if (target === 'engine') opened.push(await openEngine());
      else if (target === 'stack' || target === 'batch')
        opened.push(await openStack(targets.filter((t): t is SubmitWay => t === 'stack' || t === 'batch')));
      else if (target === 'llama-server') {
        if (!values['llama-server']) throw new Error('--llama-server <binary> is needed for that target');
        opened.push(await openLlamaServer(values['llama-server']));
      } else throw new Error(`unknown target ${target}`);
    } catch (error) {
      process.stderr.write(`${target} failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }
  const order = opened.flatMap((o) => o.targets);
  for (let index = 0; index < rounds; index += 1) {
    // Every other round in reverse, so a drift of the machine's speed favours no target.
    const turn = index % 2 === 0 ? order : [...order].reverse();
    for (const name of workloadNames) {
      for (const phase of phases) {
        for (const target of turn) {
          if (rounds > 1) log(`round ${index + 1}/${rounds}: ${target.name} ${name} ${phase.name}...`);
          try {
            rows.push({ ...(await target.phase(name, phase, firstRequest(phase, index))), round: index + 1 });
          } catch (error) {
            process.stderr.write(`${target.name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
          }
        }
      }
    }
  }
} finally {
  for (const o of opened) await o.close();
}

const find = (target: string, row: Row) =>
  rows.find(
    (r) => r.target === target && r.workload === row.workload && r.phase === row.phase && r.round === row.round,
  );
for (const row of rows) {
  const server = row.target === 'llama-server' ? undefined : find('llama-server', row);
  if (server)
    row.vs_llama_server = { tok_s: round(row.tok_s / server.tok_s), jobs_s: round(row.jobs_s / server.jobs_s) };
  const engine = row.target === 'stack' || row.target === 'batch' ? find('engine', row) : undefined;
  if (engine) row.vs_engine = { tok_s: round(row.tok_s / engine.tok_s), jobs_s: round(row.jobs_s / engine.jobs_s) };
}
if (rows.some((r) => r.workload === 'shared' && r.prompt_tokens_per_job < 500))
  log('note: the shared instruction came out under 500 prompt tokens with this tokenizer');

if (values.json) {
  for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
} else {
  const header = [
    'target',
    'workload',
    'phase',
    'jobs',
    'tok/s',
    'jobs/s',
    'vs llama-server (tok, jobs)',
    'stack/engine (tok, jobs)',
    'prompt/job',
    'evaluated',
    'reused',
  ];
  const lines = rows.map((r) => [
    rounds > 1 ? `${r.target} #${r.round}` : r.target,
    r.workload,
    `${r.phase} (${r.max_tokens}${r.phase === 'generate' && lengthSpread > 0 ? ` ± ${Math.round(lengthSpread * 100)} %` : ''})`,
    String(r.requests),
    String(r.tok_s),
    String(r.jobs_s),
    r.vs_llama_server ? `${r.vs_llama_server.tok_s} / ${r.vs_llama_server.jobs_s}` : '',
    r.vs_engine ? `${r.vs_engine.tok_s} / ${r.vs_engine.jobs_s}` : '',
    String(r.prompt_tokens_per_job),
    String(r.prompt_tokens_evaluated ?? '?'),
    String(r.prompt_tokens_reused ?? '?'),
  ]);
  table(header, lines);
  if (rounds > 1) summary();
  for (const r of rows) {
    if (r.itl_p50_ms === undefined || r.itl_p99_ms === undefined) continue;
    const steady =
      r.itl_steady_ms === undefined
        ? ''
        : `; steady state ${r.itl_steady_ms} ms, p99/steady ${round(r.itl_p99_ms / r.itl_steady_ms)} (target ≤ 2)`;
    log(
      `${r.target}${rounds > 1 ? ` #${r.round}` : ''} ${r.workload} ${r.phase}: inter-token p50 ${r.itl_p50_ms} ms, p99 ${r.itl_p99_ms} ms (p99/p50 ${round(r.itl_p99_ms / r.itl_p50_ms)}) while jobs keep arriving${steady}${gcPauses(r)}`,
    );
  }
  log('');
  const stageNames = ['http', 'queue_wait', 'extract', 'prefill', 'decode', 'handoff', 'result_store', 'read'] as const;
  table(
    ['target', 'workload', 'phase', ...stageNames.map((s) => `${s} ms`), 'ramp ms', 'tail ms'],
    rows.map((r) => [
      r.target,
      r.workload,
      r.phase,
      ...stageNames.map((s) => (r.stages_ms[s] === undefined ? '' : String(r.stages_ms[s]))),
      r.edges_ms ? String(r.edges_ms.ramp) : '',
      r.edges_ms ? String(r.edges_ms.tail) : '',
    ]),
  );
  log(
    'per job means, except ramp (phase start → first job started on a worker) and tail (last job finished → phase end), once per phase',
  );
  const stepRows = rows.filter((r) => r.step_ms);
  if (stepRows.length > 0) {
    log('');
    log(
      "engine time per decode step (ms; stack and batch: the worker engine, from the exporter): decode = dispatch to done; sampling = done to the step released with every token (to the next decode when no step is, as with one-token jobs); scheduling = release to the next decode; steps/job = decode steps per job; decoding = decode time ÷ the phase's wall time (the engine's share of it spent inside llama.cpp)",
    );
    table(
      [
        'target',
        'workload',
        'phase',
        'decode',
        'sampling',
        'scheduling',
        'sampling + scheduling share',
        'steps/job',
        'decoding',
      ],
      stepRows.map((r) => {
        const { decode, sampling, scheduling } = r.step_ms ?? { decode: 0, sampling: 0, scheduling: 0 };
        const total = decode + sampling + scheduling;
        return [
          `${r.target}${rounds > 1 ? ` #${r.round}` : ''}`,
          r.workload,
          r.phase,
          String(decode),
          String(sampling),
          String(scheduling),
          total > 0 ? `${Math.round(((sampling + scheduling) / total) * 100)} %` : '',
          r.decode_steps !== undefined ? String(round(r.decode_steps / r.requests, 2)) : '',
          r.decode_steps !== undefined ? `${Math.round(((r.decode_steps * decode) / 1000 / r.wall_s) * 100)} %` : '',
        ];
      }),
    );
  }
  const cpuRows = rows.filter((r) => r.cpu_ms_per_job);
  if (cpuRows.length > 0) {
    log('');
    const processes = [...new Set(cpuRows.flatMap((r) => Object.keys(r.cpu_ms_per_job ?? {})))];
    table(
      ['target', 'workload', 'phase', ...processes.map((p) => `${p} cpu ms/job`)],
      cpuRows.map((r) => [r.target, r.workload, r.phase, ...processes.map((p) => String(r.cpu_ms_per_job?.[p] ?? ''))]),
    );
  }
  const verdicts = acceptance(rows);
  if (verdicts.length > 0) {
    log('');
    log(
      `issue 13 acceptance, what this run measures (medians over ${rounds} round(s); reuse off, bench:engine and bench:extract are other commands):`,
    );
    table(
      ['criterion', 'target', 'workload', 'phase', 'median (range)', 'goal', 'met'],
      verdicts.map((v) => [
        v.criterion,
        v.target,
        v.workload,
        v.phase,
        v.min === v.max ? String(round(v.median)) : `${round(v.median)} (${round(v.min)}–${round(v.max)})`,
        v.goal,
        v.met ? 'yes' : 'no',
      ]),
    );
  }
}

/** With `--rounds`: each target's median tok/s and jobs/s, and each ratio's median and range over the rounds. */
function summary(): void {
  const spread = (xs: number[]) => (xs.length === 0 ? '' : `${median(xs)} (${Math.min(...xs)}–${Math.max(...xs)})`);
  const groups = byTargetWorkloadPhase(rows);
  log('');
  log(
    `medians over ${rounds} rounds (range in brackets${rounds % 2 === 0 ? '; the upper middle of an even count' : ''}):`,
  );
  table(
    [
      'target',
      'workload',
      'phase',
      'tok/s',
      'jobs/s',
      'vs llama-server (tok)',
      'vs llama-server (jobs)',
      'stack/engine (tok)',
      'stack/engine (jobs)',
    ],
    [...groups.values()].map((group) => {
      const first = group[0] as Row;
      const ratios = (pick: (r: Row) => number | undefined) =>
        spread(group.map(pick).filter((x): x is number => x !== undefined));
      return [
        first.target,
        first.workload,
        first.phase,
        String(median(group.map((r) => r.tok_s))),
        String(median(group.map((r) => r.jobs_s))),
        ratios((r) => r.vs_llama_server?.tok_s),
        ratios((r) => r.vs_llama_server?.jobs_s),
        ratios((r) => r.vs_engine?.tok_s),
        ratios((r) => r.vs_engine?.jobs_s),
      ];
    }),
  );
}

function table(header: string[], lines: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  log(fmt(header));
  log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const line of lines) log(fmt(line));
}
