/**
 * Batched-decoding benchmark of the text engine.
 *
 *   pnpm bench:engine --model <gguf | bench | tiny> [--sequences 1,4,8,16] [--tokens 128] [--threads N] [--json]
 *                     [--context N] [--gpu auto|cuda|metal|vulkan|cpu] [--draft <gguf>]
 *                     [--llama-batched-bench <binary>]
 *
 * For each N it opens the engine with N sequences on the same model, runs N jobs at once with
 * end-of-generation banned (every job generates exactly --tokens), and reports aggregate and
 * per-sequence tok/s, decode calls, tokens per decode, and the ratio to N=1. Aggregate tok/s counts
 * the decode phase (first to last generated token, as llama-batched-bench's S_TG does);
 * end-to-end tok/s includes the prompt. With --llama-batched-bench it runs that binary on the same
 * model, prompt length and threads and prints ours/theirs per N.
 */
import { execFile } from 'node:child_process';
import { parseArgs, promisify } from 'node:util';
import { createLlamaCppEngine, type GenerateResult } from '@gembatch/inference';
import { ensureTestModel } from '@gembatch/testing/models';
import { withEngineThreadpool } from './engine-threadpool.ts';

const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    sequences: { type: 'string', default: '1,4,8,16' },
    tokens: { type: 'string', default: '128' },
    threads: { type: 'string' },
    context: { type: 'string' },
    gpu: { type: 'string', default: 'auto' },
    draft: { type: 'string' },
    json: { type: 'boolean', default: false },
    'llama-batched-bench': { type: 'string' },
  },
  strict: true,
});

if (!values.model) {
  process.stderr.write(
    'usage: pnpm bench:engine --model <gguf | bench | tiny> [--sequences 1,4,8,16] [--tokens 128] [--threads N] [--json] [--llama-batched-bench <binary>]\n',
  );
  process.exit(2);
}
// The engine samples on this process's threadpool: the size a worker gets.
await withEngineThreadpool();
// `bench` and `tiny` name the testing package's generated models (written once, then cached).
const model = values.model === 'bench' || values.model === 'tiny' ? await ensureTestModel(values.model) : values.model;
const counts = values.sequences.split(',').map((s) => Number(s.trim()));
const tokens = Number(values.tokens);
const threads = values.threads === undefined ? undefined : Number(values.threads);
const gpu = values.gpu === 'cpu' ? false : (values.gpu as 'auto' | 'cuda' | 'metal' | 'vulkan');
if (counts.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(tokens) || tokens < 2) {
  process.stderr.write('--sequences must be positive integers and --tokens at least 2\n');
  process.exit(2);
}

/** Short distinct prompts: the benchmark measures decoding, not prefill. */
const prompt = (i: number) => `Sequence ${i}: the quick brown fox jumps over the lazy dog and then`;
/** Context per sequence: the prompt plus the generated tokens plus template slack. */
const context = values.context === undefined ? Math.max(256, tokens + 128) : Number(values.context);

interface Row {
  sequences: number;
  aggregate_tok_s: number;
  per_sequence_tok_s: number;
  end_to_end_tok_s: number;
  decode_calls: number;
  tokens_per_decode: number;
  full_decode_share: number;
  prompt_tokens: number;
  ratio_to_1?: number;
  reference_tok_s?: number;
}

async function measure(n: number): Promise<Row> {
  const engine = await createLlamaCppEngine({
    modelPath: model,
    sequences: n,
    contextPerSequence: context,
    gpu,
    ...(threads !== undefined ? { threads } : {}),
    ...(values.draft ? { draftModelPath: values.draft } : {}),
  });
  try {
    if (engine.info.sequences < n) throw new Error(`only ${engine.info.sequences} of ${n} sequences fit in memory`);
    const completion = { system: '', instruction: '', completionCue: '' };
    // Warm-up: page the weights in and let the CPU backend settle.
    await engine.generate({ prompt: completion, input: prompt(0), maxTokens: 8, ignoreEos: true });
    const before = engine.stats();
    const firstTokenAt: number[] = [];
    const started = performance.now();
    const results: GenerateResult[] = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        engine.generate({
          prompt: completion,
          input: prompt(i),
          maxTokens: tokens,
          ignoreEos: true,
          onToken: (count) => void (count === 1 && firstTokenAt.push(performance.now())),
        }),
      ),
    );
    const ended = performance.now();
    const after = engine.stats();
    const generated = results.reduce((sum, r) => sum + r.generatedTokens, 0);
    if (generated !== n * tokens) throw new Error(`expected ${n * tokens} generated tokens, got ${generated}`);
    const decodeStart = Math.min(...firstTokenAt);
    const decodeCalls = after.decodeCallsTotal - before.decodeCallsTotal;
    const perSequence = results.map((r) => (r.interTokenMs ? 1000 / r.interTokenMs : 0));
    return {
      sequences: n,
      // The first token of each sequence comes out of the prompt's decode, so it is not counted.
      aggregate_tok_s: round(((generated - n) / (ended - decodeStart)) * 1000),
      per_sequence_tok_s: round(perSequence.reduce((a, b) => a + b, 0) / n),
      end_to_end_tok_s: round((generated / (ended - started)) * 1000),
      decode_calls: decodeCalls,
      tokens_per_decode: round((after.decodeTokensTotal - before.decodeTokensTotal) / decodeCalls),
      full_decode_share: round((after.fullDecodeCallsTotal - before.fullDecodeCallsTotal) / decodeCalls),
      prompt_tokens: results[0]?.promptTokens ?? 0,
    };
  } finally {
    await engine.close();
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Runs llama.cpp's own llama-batched-bench on the same model and returns S_TG per parallel count. */
async function reference(binary: string, promptTokens: number): Promise<Map<number, number>> {
  const args = [
    '-m',
    model,
    '-c',
    String(context * Math.max(...counts)),
    '-b',
    '2048',
    '-ub',
    '512',
    '-npp',
    String(promptTokens),
    '-ntg',
    String(tokens),
    '-npl',
    counts.join(','),
    '-t',
    String(threads ?? 1),
    '--output-format',
    'jsonl',
  ];
  const { stdout } = await run(binary, args, { maxBuffer: 16 * 1024 * 1024 });
  const speeds = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('{')) {
      const row = JSON.parse(trimmed) as { pl?: number; speed_tg?: number };
      if (row.pl !== undefined && row.speed_tg !== undefined) speeds.set(row.pl, row.speed_tg);
      continue;
    }
    // Markdown table: | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
    const cells = trimmed
      .split('|')
      .map((c) => c.trim())
      .filter((c) => c !== '');
    if (cells.length >= 8 && /^\d+$/.test(cells[2] ?? '')) speeds.set(Number(cells[2]), Number(cells[7]));
  }
  return speeds;
}

const rows: Row[] = [];
for (const n of counts) rows.push(await measure(n));
const base = rows.find((r) => r.sequences === 1);
for (const row of rows) if (base) row.ratio_to_1 = round(row.aggregate_tok_s / base.aggregate_tok_s);
if (values['llama-batched-bench']) {
  try {
    const theirs = await reference(values['llama-batched-bench'], rows[0]?.prompt_tokens ?? 16);
    for (const row of rows) {
      const speed = theirs.get(row.sequences);
      if (speed !== undefined) row.reference_tok_s = round(speed);
    }
  } catch (error) {
    const failure = error as { message?: string; signal?: string; stderr?: string };
    process.stderr.write(
      `llama-batched-bench failed (${failure.signal ?? failure.message ?? 'unknown'}); reporting our figures only\n${failure.stderr?.slice(-2000) ?? ''}\n`,
    );
  }
}

if (values.json) {
  for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
} else {
  const header = [
    'N',
    'aggregate tok/s',
    'per-seq tok/s',
    'end-to-end tok/s',
    'decode calls',
    'tokens/decode',
    'full decodes',
    'vs N=1',
    'llama-batched-bench',
    'ours/theirs',
  ];
  const lines = rows.map((r) => [
    String(r.sequences),
    r.aggregate_tok_s.toFixed(1),
    r.per_sequence_tok_s.toFixed(1),
    r.end_to_end_tok_s.toFixed(1),
    String(r.decode_calls),
    r.tokens_per_decode.toFixed(2),
    `${(r.full_decode_share * 100).toFixed(0)}%`,
    r.ratio_to_1 === undefined ? '-' : `${r.ratio_to_1.toFixed(2)}×`,
    r.reference_tok_s === undefined ? '-' : r.reference_tok_s.toFixed(1),
    r.reference_tok_s === undefined ? '-' : (r.aggregate_tok_s / r.reference_tok_s).toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  process.stdout.write(`model ${model}, ${tokens} tokens per sequence, threads ${threads ?? 'default'}\n`);
  for (const line of [header, ...lines])
    process.stdout.write(`${line.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ')}\n`);
}
