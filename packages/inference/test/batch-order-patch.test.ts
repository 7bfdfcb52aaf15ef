import { describe, expect, it, onTestFinished } from 'vitest';
import { getLlama } from 'node-llama-cpp';
import { ensureTestModel } from '@gembatch/testing';

/**
 * Guards patches/node-llama-cpp@3.21.1.patch: node-llama-cpp must add a decode's items to the
 * llama.cpp batch in sequence-id order, whatever order the sequences queued in. This test reaches
 * into node-llama-cpp's native context (`_ctx`) to watch `addToBatch`; it fails on an unpatched or
 * upgraded node-llama-cpp that dropped the patch.
 */
describe('node-llama-cpp batch order patch', () => {
  it('adds batch items in sequence-id order when sequences queue in reverse', async () => {
    const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false });
    onTestFinished(() => llama.dispose());
    const model = await llama.loadModel({ modelPath: await ensureTestModel('tiny') });
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
});
