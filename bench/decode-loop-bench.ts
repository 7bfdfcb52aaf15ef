/**
 * Decode-loop benchmark: what a generation step costs the engine beyond llama.cpp's own work.
 *
 *   pnpm bench:decode-loop [--model <gguf | bench | tiny>] [--sequences 16] [--tokens 128] [--threads 1]
 *                          [--rounds 3] [--json]
 *
 * Three targets generate S sequences × T tokens each, greedy, end-of-generation banned, from S
 * distinct short prompts started together (one wave, no job joining: after the first decode every
 * step is S × 1 token), on the same model, threads, context size and flash-attention setting, in
 * this process, taking turns round by round (in reverse order every other round):
 * - `engine`: `createLlamaCppEngine` with S jobs at once (lock-step), each step queued in
 *   node-llama-cpp's context by the patch's `_decodeAndSample` (`DirectSteps`), plus the engine's
 *   own per-token work (barrier, output tracking);
 * - `evaluate`: node-llama-cpp's sequence evaluation alone (its per-token generator, locks, sampler
 *   configuration and promise chains), on a context of its own: S `sequence.evaluate()` generators
 *   consumed at once, each token detokenized (node-llama-cpp dispatches a decode once every
 *   sequence has queued its token, or at the event loop's next turn: one late by then misses the
 *   step, which the engine's lock-step barrier prevents);
 * - `loop`: a minimal loop on node-llama-cpp's native addon, on a context of its own: per step
 *   `initBatch(S)`, `addToBatch` of each sequence's token with its logit, `decodeBatch`, then every
 *   sequence's `sampleToken` under one `Promise.all` and a `detokenize` of each token (the engine
 *   detokenizes every token to find stop sequences), with the sampler configuration node-llama-cpp
 *   builds for the engine's request, applied once.
 *
 * Reported per round: generation tok/s (first generated token to last, as `bench:engine`'s
 * aggregate), ms per step, engine ÷ loop and evaluate ÷ loop; then medians with their range.
 * `evaluate`'s gap to `loop` is node-llama-cpp's sequence layer, which the engine no longer goes
 * through. The loop reaches into node-llama-cpp's internals (`context._ctx`, `AddonSampler`): it
 * is a measuring stick for what a decode step could cost, not an engine (no grammar, stop
 * sequences, prefix reuse, chunked prefill or abort).
 */
import { parseArgs } from 'node:util';
import { createLlamaCppEngine } from '@gembatch/inference';
import { ensureTestModel } from '@gembatch/testing/models';
import { getLlama, TokenBias, type LlamaContext, type LlamaModel, type Token } from 'node-llama-cpp';
import { addonContextOf, type AddonSampler } from './addon-context.ts';
import { withEngineThreadpool } from './engine-threadpool.ts';
import { median } from './median.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../shared/corpus/models/stories260K.gguf' },
    sequences: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '128' },
    threads: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
  strict: true,
});

// Sampling runs on this process's threadpool in both targets: the size a worker gets.
await withEngineThreadpool();
const modelPath =
  values.model === 'bench' || values.model === 'tiny' ? await ensureTestModel(values.model) : values.model;
const sequences = Number(values.sequences);
const tokens = Number(values.tokens);
const threads = Number(values.threads);
const rounds = Number(values.rounds);
if (![sequences, tokens, threads, rounds].every((n) => Number.isInteger(n) && n >= 1) || tokens < 2) {
  process.stderr.write('--sequences, --threads and --rounds must be positive integers, --tokens at least 2\n');
  process.exit(2);
}
/** Context per sequence: the prompt, the generated tokens and slack. */
const contextPerSequence = Math.max(256, tokens + 128);
const prompt = (round: number, i: number) => `Round ${round}, sequence ${i}: once upon a time there was a little`;
const log = (line: string) => void (values.json ? process.stderr : process.stdout).write(`${line}\n`);

interface ModelInternals {
  _llama: { _bindings: { AddonSampler: new (model: unknown) => AddonSampler } };
  _model: unknown;
}
interface SequenceInternals {
  _resolveSamplerConfig(options: { temperature: number; tokenBias: TokenBias }): object;
}

type TargetName = 'engine' | 'evaluate' | 'loop';
interface Measured {
  target: TargetName;
  round: number;
  tok_s: number;
  step_ms: number;
}

/** End-of-generation tokens banned, as the engine's `ignoreEos` does. */
function eogBanned(model: LlamaModel): TokenBias {
  const bias = new TokenBias(model.tokenizer);
  for (const token of [model.tokens.eos, model.tokens.eot]) if (token !== null) bias.set(token, 'never');
  return bias;
}

async function openLoop() {
  const llama = await getLlama({ gpu: false });
  const model = await llama.loadModel({ modelPath });
  const context: LlamaContext = await model.createContext({
    sequences,
    contextSize: contextPerSequence,
    threads,
    flashAttention: false,
  });
  const slots = Array.from({ length: sequences }, () => context.getSequence());
  const addon = addonContextOf(context);
  const internals = model as unknown as ModelInternals;
  // The configuration node-llama-cpp builds for the engine's requests (temperature 0, EOG banned).
  const config = (slots[0] as unknown as SequenceInternals)._resolveSamplerConfig({
    temperature: 0,
    tokenBias: eogBanned(model),
  });
  const samplers = slots.map(() => {
    const sampler = new internals._llama._bindings.AddonSampler(internals._model);
    sampler.applyConfig(config);
    return sampler;
  });

  async function generate(round: number): Promise<Measured> {
    const prompts = slots.map((_, i) => model.tokenize(prompt(round, i)));
    // The prompts in one decode, each with its last token's logit.
    addon.initBatch(prompts.reduce((sum, p) => sum + p.length, 0));
    let logits = prompts.map(
      (p, i) => addon.addToBatch(i, 0, Uint32Array.from(p), Uint32Array.of(p.length - 1))[0] as number,
    );
    const positions = prompts.map((p) => p.length);
    await addon.decodeBatch();
    let next = await Promise.all(logits.map((index, i) => addon.sampleToken(index, samplers[i] as AddonSampler)));
    const started = performance.now();
    for (let step = 1; step < tokens; step++) {
      for (const token of next) model.detokenize([token as Token]);
      addon.initBatch(sequences);
      logits = next.map(
        (token, i) =>
          addon.addToBatch(i, positions[i] as number, Uint32Array.of(token), Uint32Array.of(0))[0] as number,
      );
      for (let i = 0; i < sequences; i++) positions[i] = (positions[i] as number) + 1;
      await addon.decodeBatch();
      next = await Promise.all(logits.map((index, i) => addon.sampleToken(index, samplers[i] as AddonSampler)));
    }
    for (const token of next) model.detokenize([token as Token]);
    // The native KV cache now holds these tokens, but node-llama-cpp's sequences do not know it:
    // clear it through the addon before the next round (clearHistory erases only what they know).
    for (let i = 0; i < sequences; i++) addon.disposeSequence(i);
    const ms = performance.now() - started;
    return { target: 'loop', round, tok_s: ((tokens - 1) * sequences * 1000) / ms, step_ms: ms / (tokens - 1) };
  }

  return {
    generate,
    close: async () => {
      for (const sampler of samplers) sampler.dispose();
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

async function openEvaluate() {
  const llama = await getLlama({ gpu: false });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({
    sequences,
    contextSize: contextPerSequence,
    threads,
    flashAttention: false,
  });
  const slots = Array.from({ length: sequences }, () => context.getSequence());
  const tokenBias = eogBanned(model);

  async function generate(round: number): Promise<Measured> {
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    await Promise.all(
      slots.map(async (slot, i) => {
        await slot.clearHistory();
        let generated = 0;
        for await (const token of slot.evaluate(model.tokenize(prompt(round, i)), { temperature: 0, tokenBias })) {
          model.detokenize([token]);
          const now = performance.now();
          if (++generated === 1) first = Math.min(first, now);
          last = Math.max(last, now);
          if (generated >= tokens) break;
        }
      }),
    );
    const ms = last - first;
    return { target: 'evaluate', round, tok_s: ((tokens - 1) * sequences * 1000) / ms, step_ms: ms / (tokens - 1) };
  }

  return {
    generate,
    close: async () => {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

async function openEngine() {
  const engine = await createLlamaCppEngine({
    modelPath,
    sequences,
    contextPerSequence,
    threads,
    gpu: false,
    flashAttention: false,
    prefixReuse: false,
  });
  const request = (round: number, i: number) => ({
    prompt: { system: '', instruction: '', completionCue: '' },
    input: prompt(round, i),
    maxTokens: tokens,
    ignoreEos: true,
  });

  async function generate(round: number): Promise<Measured> {
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    const onToken = (n: number) => {
      const now = performance.now();
      if (n === 1) first = Math.min(first, now);
      last = Math.max(last, now);
    };
    await Promise.all(Array.from({ length: sequences }, (_, i) => engine.generate({ ...request(round, i), onToken })));
    // Generation from the first sequence's first token: the others' first tokens come in the same step.
    const ms = last - first;
    return { target: 'engine', round, tok_s: ((tokens - 1) * sequences * 1000) / ms, step_ms: ms / (tokens - 1) };
  }

  return { generate, close: () => engine.close() };
}

log(`decode loop: ${modelPath}, ${sequences} sequences × ${tokens} tokens, ${threads} thread(s), ${rounds} round(s)`);
const targets = [await openEngine(), await openEvaluate(), await openLoop()];
const measured: Measured[] = [];
try {
  // One unmeasured round each: first-use costs (graph allocation, JIT) stay out of the figures.
  for (const target of targets) await target.generate(0);
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? targets : [...targets].reverse();
    for (const target of order) measured.push(await target.generate(round));
  }
} finally {
  for (const target of targets) await target.close();
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const get = (target: TargetName, round: number) =>
  measured.find((m) => m.target === target && m.round === round) as Measured;
const ratios = (target: TargetName) =>
  Array.from({ length: rounds }, (_, r) => get(target, r + 1).tok_s / get('loop', r + 1).tok_s);
const summary = (values: number[]) =>
  `${round2(median(values))} (${round2(Math.min(...values))}–${round2(Math.max(...values))})`;
if (values.json) {
  for (const m of measured) process.stdout.write(`${JSON.stringify({ bench: 'decode-loop', ...m })}\n`);
} else {
  log(
    '| round | engine tok/s | evaluate tok/s | loop tok/s | ms/step (engine, evaluate, loop) | engine ÷ loop | evaluate ÷ loop |',
  );
  log(
    '|-------|--------------|----------------|------------|----------------------------------|---------------|-----------------|',
  );
  for (let r = 1; r <= rounds; r++) {
    const [e, v, l] = [get('engine', r), get('evaluate', r), get('loop', r)];
    log(
      `| ${r} | ${round2(e.tok_s)} | ${round2(v.tok_s)} | ${round2(l.tok_s)} | ${round2(e.step_ms)}, ${round2(v.step_ms)}, ${round2(l.step_ms)} | ${round2(e.tok_s / l.tok_s)} | ${round2(v.tok_s / l.tok_s)} |`,
    );
  }
  log(
    `medians of ${rounds}: engine ÷ loop ${summary(ratios('engine'))}, evaluate ÷ loop ${summary(ratios('evaluate'))}`,
  );
}
