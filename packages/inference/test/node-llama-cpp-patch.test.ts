import { describe, expect, it, onTestFinished } from 'vitest';
import { getLlama, type BatchItem, type LlamaContextSequence, type Token } from 'node-llama-cpp';
import { ensureTestModel, TEST_MODELS } from '@gembatch/testing';

/**
 * Guards patches/node-llama-cpp@3.21.1.patch: node-llama-cpp must add a decode's items to the
 * llama.cpp batch in sequence-id order, whatever order the sequences queued in, call a custom
 * batching strategy's `onDecoded` once its decode is done (the engine's step clock), keep the
 * per-token path free of copies that grow with the context (and of per-token typed arrays and
 * async-function frames), offer a sequence step without `evaluate()`'s per-token machinery
 * (`_decodeAndSample`, the engine's `DirectSteps`), and read a decode's logits once before its
 * sequences are sampled in parallel when llama.cpp may have to reorder them. These tests reach into
 * node-llama-cpp's internals to watch it; they fail on an unpatched or upgraded node-llama-cpp
 * that dropped the patch.
 */
/** A test model on a CPU llama, disposed when the test ends (the tiny one unless `spec` says otherwise). */
async function testModel(spec: Parameters<typeof ensureTestModel>[0] = 'tiny') {
  const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false });
  onTestFinished(() => llama.dispose());
  return llama.loadModel({ modelPath: await ensureTestModel(spec) });
}

/** The first `count` tokens `evaluate()` generates greedily after `prompt` (fewer if it ends first). */
async function evaluateTokens(sequence: LlamaContextSequence, prompt: Token[], count: number): Promise<number[]> {
  const generated: number[] = [];
  const iterator = sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true });
  while (generated.length < count) {
    const step = await iterator.next();
    if (step.done) break;
    generated.push(step.value);
  }
  await iterator.return();
  return generated;
}

describe('node-llama-cpp batch order patch', () => {
  it('adds batch items in sequence-id order when sequences queue in reverse', async () => {
    const model = await testModel();
    const context = await model.createContext({ sequences: 4, contextSize: 128, threads: 1 });
    const sequences = [0, 1, 2, 3].map(() => context.getSequence());

    const added: number[][] = [];
    const internal = context as unknown as { _ctx: object };
    const native = internal._ctx as Record<string, unknown>;
    let batch: number[] = [];
    internal._ctx = new Proxy(native, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (property === 'initBatch')
          return (...args: unknown[]) => (
            (batch = []), added.push(batch), (value as (...a: unknown[]) => unknown).apply(target, args)
          );
        if (property === 'addToBatch')
          return (sequenceId: number, ...rest: unknown[]) => (
            batch.push(sequenceId), (value as (...a: unknown[]) => unknown).apply(target, [sequenceId, ...rest])
          );
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });

    // Queue in reverse sequence order within one tick: arrival order 3, 2, 1, 0.
    const tokens = model.tokenize('the model is', false);
    await Promise.all([...sequences].reverse().map((sequence) => sequence.evaluateWithoutGeneratingNewTokens(tokens)));

    expect(added.length).toBeGreaterThanOrEqual(1);
    const firstBatch = added[0] ?? [];
    expect(firstBatch).toHaveLength(4);
    expect(firstBatch).toEqual([0, 1, 2, 3]);
  });

  it('tells a custom batching strategy when its decode is done, before sampling that decode’s tokens', async () => {
    const model = await testModel();
    const events: string[] = [];
    const strategy = Object.assign(
      ({ items }: { items: readonly BatchItem[] }) => {
        events.push('planned');
        return items.map((item) => ({ item, processAmount: item.tokens.length }));
      },
      { onDecoded: () => events.push('decoded') },
    );
    const context = await model.createContext({
      sequences: 2,
      contextSize: 128,
      threads: 1,
      batching: { itemPrioritizationStrategy: strategy },
    });
    const internal = context as unknown as { _ctx: object };
    const native = internal._ctx as Record<string, unknown>;
    internal._ctx = new Proxy(native, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (property === 'decodeBatch')
          return async (...args: unknown[]) => {
            await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            events.push('decodeBatch returned');
          };
        if (property === 'sampleToken')
          return (...args: unknown[]) => (
            events.push('sample'), (value as (...a: unknown[]) => unknown).apply(target, args)
          );
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });

    const tokens = model.tokenize('the model is', false);
    await Promise.all(
      [0, 1].map(async () => {
        const sequence = context.getSequence();
        const iterator = sequence.evaluate(tokens, { temperature: 0 });
        await iterator.next();
        await iterator.return();
      }),
    );

    // One decode of both prompts: planned, done, reported, then each sequence's sample.
    expect(events).toEqual(['planned', 'decodeBatch returned', 'decoded', 'sample', 'sample']);
  });
});

describe('node-llama-cpp per-token allocation patch', () => {
  it('appends each decoded token to the sequence’s history in place, not to a copy of it', async () => {
    const model = await testModel();
    const context = await model.createContext({ sequences: 1, contextSize: 128, threads: 1 });
    const sequence = context.getSequence();
    const internal = sequence as unknown as { _contextTokens: number[] };
    const history = internal._contextTokens;
    const prompt = model.tokenize('the model is', false);

    const generated = await evaluateTokens(sequence, prompt, 4);

    // One array all along (concat made a new one, a copy of the whole history, per token), holding
    // the prompt and every generated token but the last (sampled, not yet decoded).
    expect(internal._contextTokens).toBe(history);
    expect(sequence.contextTokens).toEqual([...prompt, ...generated.slice(0, -1)]);
  });

  it('builds sampler options by copying set fields, not by deleting unset ones', async () => {
    const dist = new URL('.', import.meta.resolve('node-llama-cpp'));
    const { removeNullFields } = (await import(new URL('utils/removeNullFields.js', dist).href)) as {
      removeNullFields(this: void, o: object): object;
    };
    const options = { temperature: 0, topK: undefined, seed: null, tokenBiasKeys: [1], grammar: undefined };
    expect(removeNullFields(options)).toEqual({ temperature: 0, tokenBiasKeys: [1] });
    expect(Object.keys(removeNullFields(options))).toEqual(['temperature', 'tokenBiasKeys']);
    // `delete` turned every token's sampler options into a dictionary-mode object.
    expect(removeNullFields.toString()).not.toContain('delete');
  });
});

describe('node-llama-cpp direct step patch', () => {
  interface Patched {
    _decodeAndSample(tokens: number[], sampler: { disposed: boolean; dispose(): void }): Promise<number>;
    _createSampler(options: { temperature: number }): { disposed: boolean; dispose(): void };
  }

  it('decodes and samples a step as evaluate() does, keeping the sequence’s tokens and position', async () => {
    const model = await testModel();
    const context = await model.createContext({ sequences: 1, contextSize: 128, threads: 1 });
    const sequence = context.getSequence();
    const prompt = model.tokenize('the model is', false);

    const expected = await evaluateTokens(sequence, prompt, 4);
    await sequence.clearHistory();

    const patched = sequence as unknown as Patched;
    const sampler = patched._createSampler({ temperature: 0 });
    const generated: number[] = [];
    let pending = prompt as number[];
    while (generated.length < expected.length) {
      const token = await patched._decodeAndSample(pending, sampler);
      generated.push(token);
      pending = [token];
    }
    sampler.dispose();

    expect(generated).toEqual(expected);
    // As after evaluate(): the prompt and every generated token but the last (sampled, not decoded).
    expect(sequence.contextTokens).toEqual([...prompt, ...generated.slice(0, -1)]);
    expect(sequence.nextTokenIndex).toBe(prompt.length + generated.length - 1);
  });

  it('steps a generating sequence without new typed arrays per token or async-function frames', async () => {
    const model = await testModel();
    const context = await model.createContext({ sequences: 1, contextSize: 128, threads: 1 });
    const sequence = context.getSequence();
    const patched = sequence as unknown as Patched;
    const internal = context as unknown as { _ctx: object; _decodeTokens: () => unknown };
    const native = internal._ctx as Record<string, unknown>;
    const added: Array<{ tokens: Uint32Array; logits: Uint32Array; values: number[] }> = [];
    internal._ctx = new Proxy(native, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (property === 'addToBatch')
          return (sequenceId: number, first: number, tokens: Uint32Array, logits: Uint32Array) => (
            added.push({ tokens, logits, values: [...tokens] }),
            (value as (...a: unknown[]) => unknown).apply(target, [sequenceId, first, tokens, logits])
          );
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });

    const sampler = patched._createSampler({ temperature: 0 });
    const first = await patched._decodeAndSample(model.tokenize('the model is', false), sampler);
    const second = await patched._decodeAndSample([first], sampler);
    await patched._decodeAndSample([second], sampler);
    sampler.dispose();

    // The two one-token steps hand addToBatch the same preallocated arrays, holding each step's token.
    const [prompt, stepOne, stepTwo] = added as [(typeof added)[0], (typeof added)[0], (typeof added)[0]];
    expect(prompt.tokens).not.toBe(stepOne.tokens);
    expect(stepOne.tokens).toBe(stepTwo.tokens);
    expect(stepOne.logits).toBe(stepTwo.logits);
    expect([stepOne.values, stepTwo.values]).toEqual([[first], [second]]);
    // An async function allocates its frame and an await's continuation per call, every token.
    expect(patched._decodeAndSample.constructor.name).toBe('Function');
    expect(internal._decodeTokens.constructor.name).toBe('Function');
  });

  it('refuses tokens that do not fit instead of shifting the context', async () => {
    const model = await testModel();
    const context = await model.createContext({ sequences: 1, contextSize: 128, threads: 1 });
    const patched = context.getSequence() as unknown as Patched;
    const sampler = patched._createSampler({ temperature: 0 });
    await expect(patched._decodeAndSample(Array<number>(context.contextSize).fill(1), sampler)).rejects.toThrow(
      'do not fit',
    );
    sampler.dispose();
  });
});

describe('node-llama-cpp logits reorder patch', () => {
  interface NativeSampler {
    readonly _sampler: object;
    dispose(): void;
  }
  interface Patched {
    _decodeAndSample(tokens: number[], sampler: NativeSampler): Promise<number>;
    _createSampler(options: { temperature: number }): NativeSampler;
  }
  /** node-llama-cpp's native context, as far as this test decodes on it directly. */
  interface NativeContext {
    initBatch(size: number): void;
    addToBatch(
      sequenceId: number,
      firstTokenIndex: number,
      tokens: Uint32Array,
      logitIndexes: Uint32Array,
    ): Uint32Array;
    decodeBatch(): Promise<void>;
    sampleToken(batchLogitIndex: number, sampler: object): Promise<number>;
    removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
  }

  it('samples each sequence from its own logits when a several-token prompt shares the decode', async () => {
    // A wide vocabulary makes llama.cpp's lazy reorder of the logits rows slow enough for two
    // samples on worker threads to overlap in it (the race this hunk closes: 71 of 200 rounds
    // swapped the two sequences' tokens without it).
    const model = await testModel({ ...TEST_MODELS.tiny, layers: 1, vocabSize: 65_536, name: 'gembatch-wide-vocab' });
    const context = await model.createContext({ sequences: 2, contextSize: 256, threads: 1 });
    const native = (context as unknown as { _ctx: NativeContext })._ctx;
    const [joining, running] = [context.getSequence(), context.getSequence()] as const;
    const [a, b] = [joining, running] as unknown as [Patched, Patched];
    // The joining prompt (sequence 0) and the running sequence's next token (sequence 1) in one
    // decode: llama.cpp's per-sequence ubatch split finishes sequence 1's output first, out of
    // batch order.
    const prompt = Array.from({ length: 20 }, (_, i) => ((i * 37) % 500) + 10);
    const history = [1, 50, 60, 70];
    const next = 99;
    const round = async (decode: (samplers: readonly [NativeSampler, NativeSampler]) => Promise<number[]>) => {
      await joining.clearHistory();
      await running.clearHistory();
      await running.evaluateWithoutGeneratingNewTokens(history as Token[]);
      const samplers = [a._createSampler({ temperature: 0 }), b._createSampler({ temperature: 0 })] as const;
      try {
        return (await decode(samplers)).join(',');
      } finally {
        for (const sampler of samplers) sampler.dispose();
      }
    };

    // The reference: the same batch, decoded on the native context and sampled one sequence after
    // the other (so the first read's reorder is done before the second), then removed again.
    const expected = await round(async (samplers) => {
      native.initBatch(prompt.length + 1);
      const [joiningLogit] = native.addToBatch(0, 0, Uint32Array.from(prompt), Uint32Array.of(prompt.length - 1));
      const [runningLogit] = native.addToBatch(1, history.length, Uint32Array.of(next), Uint32Array.of(0));
      await native.decodeBatch();
      const tokens = [
        await native.sampleToken(joiningLogit ?? -1, samplers[0]._sampler),
        await native.sampleToken(runningLogit ?? -1, samplers[1]._sampler),
      ];
      native.removeTokenCellsFromSequence(0, 0, context.contextSize);
      native.removeTokenCellsFromSequence(1, 0, context.contextSize);
      return tokens;
    });
    expect(new Set(expected.split(',')).size).toBe(2);

    // Through node-llama-cpp, queued in one tick: the same batch, sampled on worker threads.
    const together: string[] = [];
    for (let i = 0; i < 100; i++)
      together.push(
        await round((samplers) =>
          Promise.all([a._decodeAndSample(prompt, samplers[0]), b._decodeAndSample([next], samplers[1])]),
        ),
      );
    expect(new Set(together)).toEqual(new Set([expected]));
  });
});
