import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GembatchError } from '@gembatch/contracts';
import { ensureTestModel, ensureTinyGemma4, tempDir } from '@gembatch/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { inspectModelFile, modelNameFor } from './model-file.ts';

async function failure(promise: Promise<unknown>): Promise<GembatchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GembatchError);
  return error as GembatchError;
}

describe('inspectModelFile (node-llama-cpp reader, both engines)', () => {
  it('reads the architecture and the quantization of a language model and of a projector', async () => {
    const tiny = await inspectModelFile(await ensureTestModel('tiny'));
    expect(tiny.architecture).toBe('llama');
    expect(tiny.quant).not.toBe('');
    const { modelPath, mmprojPath } = await ensureTinyGemma4();
    expect((await inspectModelFile(modelPath, { role: 'text' })).architecture).toBe('gemma4');
    expect((await inspectModelFile(mmprojPath, { role: 'projector' })).architecture).toBe('clip');
    expect((await inspectModelFile(mmprojPath, { role: 'any' })).architecture).toBe('clip');
  });

  it('refuses a projector as a language model and a language model as a projector, naming the option', async () => {
    const { modelPath, mmprojPath } = await ensureTinyGemma4();
    const asText = await failure(inspectModelFile(mmprojPath, { option: 'modelPath' }));
    expect(asText.code).toBe('GB_ERR_MODEL_LOAD');
    expect(asText.message).toMatch(/^modelPath .* multimodal projector/);
    const asProjector = await failure(inspectModelFile(modelPath, { role: 'projector', option: 'mmprojPath' }));
    expect(asProjector.code).toBe('GB_ERR_MODEL_LOAD');
    expect(asProjector.message).toMatch(/^mmprojPath .* gemma4 model, not a multimodal projector/);
  });

  it('refuses a missing file, a file that is not GGUF and a truncated header', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    expect((await failure(inspectModelFile(path.join(dir.path, 'absent.gguf')))).code).toBe('GB_ERR_MODEL_LOAD');
    const text = path.join(dir.path, 'notes.gguf');
    await writeFile(text, 'not a model at all');
    expect((await failure(inspectModelFile(text))).message).toMatch(/not a readable GGUF file/);
    const empty = path.join(dir.path, 'empty.gguf');
    await writeFile(empty, '');
    expect((await failure(inspectModelFile(empty))).code).toBe('GB_ERR_MODEL_LOAD');
    // GGUF v3 magic, version and counts, then one key cut in the middle.
    const cut = path.join(dir.path, 'cut.gguf');
    const counts = Buffer.alloc(20);
    counts.writeUInt32LE(3, 0);
    counts.writeBigUInt64LE(0n, 4);
    counts.writeBigUInt64LE(1n, 12);
    await writeFile(
      cut,
      Buffer.concat([Buffer.from('GGUF'), counts, Buffer.from([20, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('general.')]),
    );
    expect((await failure(inspectModelFile(cut))).code).toBe('GB_ERR_MODEL_LOAD');
  });
});

describe('modelNameFor', () => {
  it('drops the folder and the .gguf extension', () => {
    expect(modelNameFor('/srv/models/gemma-4-12b-it-Q4_K_M.gguf')).toBe('gemma-4-12b-it-Q4_K_M');
    expect(modelNameFor('/srv/models/Model.GGUF')).toBe('Model');
  });
});
