/**
 * Sampling benchmark: generation speed against the size of Node's libuv threadpool.
 *
 *   pnpm bench:sampling [--model <gguf | gemma-vocab>] [--threadpool 1,2,4] [--sequences 16] [--tokens 32]
 *                       [--schema none,json] [--threads 1] [--gpu cpu|auto|cuda|vulkan|metal] [--rounds 3] [--json]
 *
 * node-llama-cpp runs each decode, and then each sequence's sampling of its next token, as a task on
 * Node's libuv threadpool: `UV_THREADPOOL_SIZE` threads, 4 unless the variable is set before the
 * process starts (libuv reads it once, when the pool first starts, which is before any module of
 * ours runs). So at most that many sequences sample at once, however many cores the host has.
 * Sampling scans the whole vocabulary: Gemma's has 262,144 tokens, and a JSON-schema grammar checks
 * candidates against the schema on top.
 *
 * Each pool size runs in its own child process with that `UV_THREADPOOL_SIZE`: the engine opens
 * `--sequences` sequences, runs one unmeasured job, then `--sequences` jobs at once, each up to
 * `--tokens` tokens (end-of-generation banned without a schema; with `--schema json` each job
 * generates under a small JSON Schema until it stops). Reported: generated tok/s over the
 * generation, ms per decode step and, by the engine's step clock, how much of a step is the decode
 * and how much the sampling (the decode's end to the step's release with every sequence's token),
 * and each pool size's tok/s ÷ the default 4's. `--rounds N` runs
 * every size N times, in reverse order every other round (this host's speed drifts between runs),
 * and reports medians with their range.
 *
 * The default model, `gemma-vocab`, is the testing package's tiny model with Gemma's 262,144-token
 * vocabulary (written once, then cached): its decode is cheap, its sampling costs what a Gemma
 * model's does. Sampling runs on the CPU whatever `--gpu` says (the default, `cpu`, decodes there too).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TASKS, type EngineStats, type StepTimes } from '@gembatch/contracts';
import { createLlamaCppEngine, type GenerateRequest } from '@gembatch/inference';
import { ensureTestModel, TEST_MODELS } from '@gembatch/testing/models';
import { median } from './median.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'gemma-vocab' },
    threadpool: { type: 'string', default: '1,2,4' },
    sequences: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '32' },
    schema: { type: 'string', default: 'none,json' },
    threads: { type: 'string', default: '1' },
    gpu: { type: 'string', default: 'cpu' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
  },
  strict: true,
});

/** Gemma's vocabulary size (Gemma 3 and 4 GGUFs). */
const GEMMA_VOCAB_TOKENS = 262_144;
/** libuv's pool size when `UV_THREADPOOL_SIZE` is not set. */
const LIBUV_DEFAULT_THREADPOOL = 4;
/** A small schema: an object of a string and a number, as an extraction task asks. */
const SCHEMA = {
  type: 'object',
  properties: { name: { type: 'string' }, amount: { type: 'number' } },
  required: ['name', 'amount'],
};

type SchemaMode = 'none' | 'json';

interface Measurement {
  tok_s: number;
  ms_per_step: number;
  /** Of a step, ms from the decode's end to the step's release with every sequence's token (the engine's step clock). */
  sampling_ms_per_step: number;
  decode_ms_per_step: number;
  generated: number;
}

const sequences = Number(values.sequences);
const tokens = Number(values.tokens);
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const pools = values.threadpool.split(',').map((s) => Number(s.trim()));
const schemas = values.schema.split(',').map((s) => s.trim()) as SchemaMode[];
if (
  [sequences, tokens, threads, rounds, ...pools].some((n) => !Number.isInteger(n) || n < 1) ||
  schemas.some((s) => s !== 'none' && s !== 'json') ||
  !['cpu', 'auto', 'cuda', 'vulkan', 'metal'].includes(values.gpu)
) {
  process.stderr.write(
    'usage: pnpm bench:sampling [--model <gguf | gemma-vocab>] [--threadpool 1,2,4] [--sequences 16] [--tokens 32] [--schema none,json] [--threads 1] [--gpu cpu|auto|cuda|vulkan|metal] [--rounds 3] [--json]\n',
  );
  process.exit(2);
}

async function modelPath(): Promise<string> {
  if (values.model !== 'gemma-vocab') return values.model;
  return ensureTestModel({ ...TEST_MODELS.tiny, vocabSize: GEMMA_VOCAB_TOKENS, name: 'gembatch-gemma-vocab' });
}

/** Child mode: one engine under this process's threadpool, one measurement per schema mode, as JSON lines. */
async function measureHere(): Promise<void> {
  const engine = await createLlamaCppEngine({
    modelPath: await modelPath(),
    sequences,
    contextPerSequence: 256,
    threads,
    gpu: values.gpu === 'cpu' ? false : (values.gpu as 'auto' | 'cuda' | 'vulkan' | 'metal'),
  });
  try {
    for (const schema of schemas) {
      const request = (i: number, maxTokens: number): GenerateRequest => ({
        prompt: TASKS.prompt.prompt({ instruction: 'Name the payee and the amount.' }),
        input: `Invoice ${i}: paid to supplier number ${i * 7} the sum of ${i * 13} euros.`,
        maxTokens,
        thinking: false,
        ...(schema === 'json' ? { jsonSchema: SCHEMA } : { ignoreEos: true }),
      });
      await engine.generate(request(0, 4));
      const before = engine.stats();
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: sequences }, (_, i) => engine.generate(request(i + 1, tokens))),
      );
      const seconds = (performance.now() - started) / 1000;
      const after = engine.stats();
      const steps = after.decodeCallsTotal - before.decodeCallsTotal;
      const clock = (stats: EngineStats, part: keyof StepTimes) => stats.stepTimeMsTotal?.[part] ?? Number.NaN;
      const generated = results.reduce((sum, r) => sum + r.generatedTokens, 0);
      const row: Measurement & { schema: SchemaMode } = {
        schema,
        tok_s: generated / seconds,
        ms_per_step: (seconds * 1000) / steps,
        sampling_ms_per_step: (clock(after, 'sampling') - clock(before, 'sampling')) / steps,
        decode_ms_per_step: (clock(after, 'decode') - clock(before, 'decode')) / steps,
        generated,
      };
      process.stdout.write(`${JSON.stringify(row)}\n`);
    }
  } finally {
    await engine.close();
  }
}

/** Runs this script in child mode with `UV_THREADPOOL_SIZE=pool`; one measurement per schema mode. */
function measureInChild(pool: number): Promise<Map<SchemaMode, Measurement>> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child'];
  for (const [name, value] of Object.entries(values))
    if (name !== 'child' && name !== 'json' && typeof value === 'string') args.push(`--${name}`, value);
  const child = spawn(process.execPath, args, {
    env: { ...process.env, UV_THREADPOOL_SIZE: String(pool) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`the child with UV_THREADPOOL_SIZE=${pool} exited with ${code}`));
      const rows = new Map<SchemaMode, Measurement>();
      for (const line of out.split('\n').filter((l) => l.startsWith('{'))) {
        const { schema, ...measurement } = JSON.parse(line) as Measurement & { schema: SchemaMode };
        rows.set(schema, measurement);
      }
      resolve(rows);
    });
  });
}

if (values.child) {
  await measureHere();
} else {
  // Written before the children start, so none of them times the model's writing.
  const model = await modelPath();
  const runs = new Map<number, Array<Map<SchemaMode, Measurement>>>(pools.map((pool) => [pool, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? pools : [...pools].reverse();
    for (const pool of order) runs.get(pool)?.push(await measureInChild(pool));
  }
  const summary = (pool: number, schema: SchemaMode, pick: (m: Measurement) => number): number[] =>
    (runs.get(pool) ?? []).map((run) => run.get(schema)).flatMap((m) => (m ? [pick(m)] : []));
  const rows = schemas.flatMap((schema) =>
    pools.map((pool) => {
      const tokS = summary(pool, schema, (m) => m.tok_s);
      const base = summary(LIBUV_DEFAULT_THREADPOOL, schema, (m) => m.tok_s);
      return {
        threadpool: pool,
        schema,
        tok_s: round2(median(tokS)),
        tok_s_min: round2(Math.min(...tokS)),
        tok_s_max: round2(Math.max(...tokS)),
        ms_per_step: round2(median(summary(pool, schema, (m) => m.ms_per_step))),
        decode_ms_per_step: round2(median(summary(pool, schema, (m) => m.decode_ms_per_step))),
        sampling_ms_per_step: round2(median(summary(pool, schema, (m) => m.sampling_ms_per_step))),
        vs_default: base.length > 0 ? round2(median(tokS) / median(base)) : null,
      };
    }),
  );
  if (values.json) {
    for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
  } else {
    process.stdout.write(
      `model ${model}, ${sequences} sequences × up to ${tokens} tokens, ${threads} decode thread(s), ${rounds} round(s) (median, range; an even count takes the upper middle)\n`,
    );
    process.stdout.write(
      '| UV_THREADPOOL_SIZE | schema | tok/s | ms per step | of which decode | of which sampling | vs 4 (the default) |\n|---|---|---|---|---|---|---|\n',
    );
    for (const r of rows)
      process.stdout.write(
        `| ${r.threadpool} | ${r.schema} | ${r.tok_s} (${r.tok_s_min}–${r.tok_s_max}) | ${r.ms_per_step} | ${r.decode_ms_per_step} | ${r.sampling_ms_per_step} | ${r.vs_default ?? '-'} |\n`,
      );
  }
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
