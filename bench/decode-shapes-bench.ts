/**
 * Decode-shapes benchmark: what one llama.cpp decode costs for the batch shapes the engine makes.
 *
 *   pnpm bench:decode-shapes [--model <gguf | bench | tiny>] [--sequences 16] [--history 128] [--threads 1]
 *                            [--rounds 15] [--json]
 *
 * Every sequence of one context first holds `--history` tokens (a distinct job's prompt is ~126),
 * then each shape below is decoded on top of that and its cells removed again, so every decode
 * starts from the same cache; the shapes take turns within each round and the median and the
 * fastest of the rounds are printed, with the median ÷ a generation step's (what an inter-token
 * gap of a step of that shape would be against steady decoding) and, for a step carrying a
 * prompt chunk, the milliseconds each prompt token added. S sequences, H = S/2:
 * - `step S×1`: a generation step, every sequence one token;
 * - `step + chunk N`: the same step where one sequence adds N prompt tokens (a joining job's
 *   chunk, `GEMBATCH_PREFILL_CHUNK_TOKENS`), for N = 8, 32, 64; and two joining sequences of 16;
 * - `prompts H×32 …`: H prompts of 32 tokens each, on consecutive sequence ids, of different
 *   lengths with the same total, and on every other id (llama.cpp splits a batch of a context
 *   whose sequences keep separate caches into passes of consecutive ids with equal token counts);
 * - `prompt 1×(32·H)`: the same tokens as one sequence's prompt, `prompt 1×32` and `1×1`.
 *
 * The decodes go straight to node-llama-cpp's native context (`context._ctx`: `initBatch`,
 * `addToBatch`, `decodeBatch`, `removeTokenCellsFromSequence`), internals of 3.21.1 that
 * `bench/decode-shapes.test.ts` runs on the tiny model. Threads, context and flash attention are
 * the engine's defaults for the backend found (`getLlama` picks the GPU when there is one), so the
 * same command answers on a GPU what a prompt chunk costs there.
 */
import { parseArgs } from 'node:util';
import { ensureTestModel } from '@gembatch/testing/models';
import { getLlama, type LlamaContext } from 'node-llama-cpp';
import { addonContextOf } from './addon-context.ts';
import { median } from './median.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../shared/corpus/models/stories260K.gguf' },
    sequences: { type: 'string', default: '16' },
    history: { type: 'string', default: '128' },
    threads: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '15' },
    json: { type: 'boolean', default: false },
  },
  strict: true,
});

const modelPath =
  values.model === 'bench' || values.model === 'tiny' ? await ensureTestModel(values.model) : values.model;
const sequences = Number(values.sequences);
const history = Number(values.history);
const threads = Number(values.threads);
const rounds = Number(values.rounds);
if (
  ![sequences, history, threads, rounds].every((n) => Number.isInteger(n) && n >= 1) ||
  sequences < 4 ||
  sequences % 2 !== 0
) {
  process.stderr.write(
    '--history, --threads and --rounds must be positive integers, --sequences an even number of at least 4\n',
  );
  process.exit(2);
}
const log = (line: string) => void (values.json ? process.stderr : process.stdout).write(`${line}\n`);

/** One sequence's part of a decode: `tokens` new tokens, the last with its logit. */
interface Part {
  id: number;
  tokens: number;
}
interface Shape {
  name: string;
  parts: Part[];
  /** A generation step with prompt tokens in it: reported per prompt token beyond the step's S tokens. */
  chunked?: true;
}

/** Tokens a decode of these parts carries. */
const tokensOf = (parts: readonly Part[]) => parts.reduce((sum, p) => sum + p.tokens, 0);
const half = sequences / 2;
/** A generation step where the sequences in `joining` add that many prompt tokens instead of one token. */
const step = (joining: Record<number, number> = {}): Part[] =>
  Array.from({ length: sequences }, (_, id) => ({ id, tokens: joining[id] ?? 1 }));
const shapes: Shape[] = [
  { name: `step ${sequences}×1`, parts: step() },
  ...[8, 32, 64].map((n) => ({ name: `step + chunk ${n}`, parts: step({ 1: n }), chunked: true as const })),
  { name: 'step + 2 chunks of 16', parts: step({ 1: 16, [half + 1]: 16 }), chunked: true },
  { name: `prompts ${half}×32, consecutive ids`, parts: Array.from({ length: half }, (_, id) => ({ id, tokens: 32 })) },
  {
    // 31, 33, 30, 34, … (an odd one out 32): the same total in lengths that differ.
    name: `prompts ${half}, lengths 32 ± ${half >> 1}`,
    parts: Array.from({ length: half }, (_, id) => ({
      id,
      tokens: half % 2 === 1 && id === half - 1 ? 32 : 32 + (id % 2 === 0 ? -1 : 1) * ((id >> 1) + 1),
    })),
  },
  {
    name: `prompts ${half}×32, every other id`,
    parts: Array.from({ length: half }, (_, k) => ({ id: 2 * k, tokens: 32 })),
  },
  { name: `prompt 1×${half * 32}`, parts: [{ id: 0, tokens: half * 32 }] },
  { name: 'prompt 1×32', parts: [{ id: 0, tokens: 32 }] },
  { name: 'prompt 1×1', parts: [{ id: 0, tokens: 1 }] },
];
const longest = Math.max(...shapes.flatMap((s) => s.parts.map((p) => p.tokens)));
const largest = Math.max(history, ...shapes.map((s) => tokensOf(s.parts)));

const llama = await getLlama();
try {
  const model = await llama.loadModel({ modelPath });
  const context: LlamaContext = await model.createContext({
    sequences,
    contextSize: history + longest + 64,
    threads,
    batchSize: Math.max(512, largest),
    // The engine's default: off on the CPU (its unfused kernels are faster there), llama.cpp's choice on a GPU.
    flashAttention: llama.gpu === false ? false : 'auto',
  });
  for (let i = 0; i < sequences; i++) context.getSequence();
  const addon = addonContextOf(context);
  const text = model.tokenize('Once upon a time there was a little girl who lived in a small house by the sea. ');
  /** `count` ordinary tokens, different for each sequence. */
  const tokensFor = (id: number, count: number) =>
    Uint32Array.from({ length: count }, (_, i) => text[(i + id * 5) % text.length] as number);

  async function decode(parts: readonly Part[], from: number): Promise<number> {
    addon.initBatch(tokensOf(parts));
    for (const { id, tokens } of parts) addon.addToBatch(id, from, tokensFor(id, tokens), Uint32Array.of(tokens - 1));
    const started = performance.now();
    await addon.decodeBatch();
    return performance.now() - started;
  }

  // Each sequence's history, one decode per sequence (the batch size covers it: `largest`).
  for (let id = 0; id < sequences; id++) await decode([{ id, tokens: history }], 0);
  const times = new Map<string, number[]>(shapes.map((s) => [s.name, []]));
  for (let round = 0; round <= rounds; round++) {
    for (const shape of round % 2 === 0 ? shapes : [...shapes].reverse()) {
      const ms = await decode(shape.parts, history);
      for (const { id } of shape.parts) addon.removeTokenCellsFromSequence(id, history, -1);
      // Round 0 warms every shape up (first-use allocations) and is not counted.
      if (round > 0) times.get(shape.name)?.push(ms);
    }
  }

  const stepMs = median(times.get(shapes[0]?.name ?? '') ?? []);
  log(
    `${model.filename ?? modelPath}, ${sequences} sequences holding ${history} tokens each, ${threads} thread(s), ${llama.gpu || 'cpu'}; medians of ${rounds} rounds`,
  );
  log('| shape | tokens | median ms | fastest ms | ÷ step | ms per prompt token added |');
  log('|---|---|---|---|---|---|');
  for (const shape of shapes) {
    const all = times.get(shape.name) ?? [];
    const ms = median(all);
    const tokens = tokensOf(shape.parts);
    const perToken = shape.chunked ? (ms - stepMs) / (tokens - sequences) : undefined;
    if (values.json)
      process.stdout.write(
        `${JSON.stringify({
          bench: 'decode-shapes',
          shape: shape.name,
          tokens,
          median_ms: round3(ms),
          fastest_ms: round3(Math.min(...all)),
          vs_step: round3(ms / stepMs),
          ...(perToken === undefined ? {} : { ms_per_prompt_token: round3(perToken) }),
        })}\n`,
      );
    log(
      `| ${shape.name} | ${tokens} | ${ms.toFixed(2)} | ${Math.min(...all).toFixed(2)} | ${(ms / stepMs).toFixed(2)} | ${perToken === undefined ? '' : perToken.toFixed(3)} |`,
    );
  }
} finally {
  await llama.dispose();
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
