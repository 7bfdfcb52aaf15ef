/**
 * Flash attention on and off, side by side, in each engine on the CPU.
 *
 *   pnpm bench:flash-attention [--model <gguf | bench | tiny | tiny-gemma4>] [--mmproj <gguf>]
 *                              [--engines text,multimodal] [--sequences 8] [--jobs 32] [--tokens 32]
 *                              [--prompt-repeats 6] [--threads 1]
 *
 * For each engine and each setting it opens the engine on the CPU, runs one warm-up wave, then
 * `--jobs` jobs (`--sequences` at a time) of a shared instruction repeated `--prompt-repeats` times
 * plus a short distinct document, each generating exactly `--tokens`, and prints end-to-end tok/s
 * (prompt included) and off ÷ on. `text` is node-llama-cpp (`createLlamaCppEngine`), `multimodal`
 * is @fugood/llama.node (`createLlamaNodeEngine`, needs a projector: `--mmproj`, or the generated
 * tiny Gemma 4's). The engines' defaults (text: off on the CPU; multimodal: auto) come from these
 * figures; see packages/inference/README.md.
 */
import { parseArgs } from 'node:util';
import { createLlamaCppEngine, createLlamaNodeEngine, type Engine, type GenerateRequest } from '@gembatch/inference';
import { ensureTinyGemma4 } from '@gembatch/testing/gemma4-models';
import { ensureTestModel } from '@gembatch/testing/models';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny-gemma4' },
    mmproj: { type: 'string' },
    engines: { type: 'string', default: 'text,multimodal' },
    sequences: { type: 'string', default: '8' },
    jobs: { type: 'string', default: '32' },
    tokens: { type: 'string', default: '32' },
    'prompt-repeats': { type: 'string', default: '6' },
    threads: { type: 'string', default: '1' },
  },
  strict: true,
});

const sequences = Number(values.sequences);
const jobs = Number(values.jobs);
const tokens = Number(values.tokens);
const threads = Number(values.threads);
let modelPath: string;
let mmprojPath = values.mmproj;
if (values.model === 'tiny-gemma4') {
  const tiny = await ensureTinyGemma4();
  modelPath = tiny.modelPath;
  mmprojPath ??= tiny.mmprojPath;
} else if (values.model === 'bench' || values.model === 'tiny') modelPath = await ensureTestModel(values.model);
else modelPath = values.model;

const instruction = 'Read the document and continue it in the same voice, keeping every name and number. '.repeat(
  Number(values['prompt-repeats']),
);
const request = (i: number): GenerateRequest => ({
  prompt: { system: '', instruction, completionCue: '' },
  input: `Document ${i}: parcel ${i * 7 + 3} left the depot in Leeds on Monday.`,
  maxTokens: tokens,
  ignoreEos: true,
});

async function open(engine: string, flashAttention: boolean): Promise<Engine> {
  const common = { modelPath, sequences, contextPerSequence: 1024, threads, flashAttention };
  if (engine === 'text') return createLlamaCppEngine({ ...common, gpu: false });
  if (!mmprojPath) throw new Error('the multimodal engine needs --mmproj (or --model tiny-gemma4)');
  return createLlamaNodeEngine({ ...common, mmprojPath, gpu: false });
}

/** End-to-end tok/s of `jobs` jobs, `sequences` in flight, after one warm-up wave. */
async function measure(engine: Engine): Promise<{ tokS: number; promptTokens: number }> {
  const wave = (first: number, count: number) =>
    Promise.all(Array.from({ length: count }, (_, i) => engine.generate(request(first + i))));
  await wave(0, sequences);
  const started = performance.now();
  const results = await wave(1000, jobs);
  const seconds = (performance.now() - started) / 1000;
  const generated = results.reduce((sum, r) => sum + r.generatedTokens, 0);
  return { tokS: generated / seconds, promptTokens: results[0]?.promptTokens ?? 0 };
}

console.log(`model ${modelPath}, ${sequences} sequences, ${jobs} jobs × ${tokens} tokens, ${threads} thread(s), CPU\n`);
console.log('| engine | prompt tokens | off tok/s | on tok/s | off ÷ on |');
console.log('|---|---|---|---|---|');
for (const name of values.engines.split(',').map((e) => e.trim())) {
  const figures: Record<'off' | 'on', number> = { off: 0, on: 0 };
  let promptTokens = 0;
  for (const setting of ['off', 'on'] as const) {
    const engine = await open(name, setting === 'on');
    try {
      const measured = await measure(engine);
      figures[setting] = measured.tokS;
      promptTokens = measured.promptTokens;
    } finally {
      await engine.close();
    }
  }
  console.log(
    `| ${name} | ${promptTokens} | ${figures.off.toFixed(1)} | ${figures.on.toFixed(1)} | ${(figures.off / figures.on).toFixed(2)} |`,
  );
}
