import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from '@gembatch/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { readGgufKind } from './gguf-architecture.ts';

function ggufString(text: string): Buffer {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  return Buffer.concat([length, Buffer.from(text)]);
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}

function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
}

/** A GGUF v3 header with the given key/values and no tensors. */
function header(entries: Buffer[], keys: number): Buffer {
  return Buffer.concat([Buffer.from('GGUF'), u32(3), u64(0), u64(keys), ...entries]);
}

describe('readGgufKind', () => {
  it('finds the architecture after other keys, arrays included', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const file = path.join(dir.path, 'clip.gguf');
    const stringArray = Buffer.concat([ggufString('general.tags'), u32(9), u32(8), u64(2), ggufString('a'), ggufString('bc')]);
    const floatArray = Buffer.concat([ggufString('general.numbers'), u32(9), u32(6), u64(3), Buffer.alloc(12)]);
    const flag = Buffer.concat([ggufString('clip.has_vision_encoder'), u32(7), Buffer.from([1])]);
    const arch = Buffer.concat([ggufString('general.architecture'), u32(8), ggufString('clip')]);
    await writeFile(file, header([stringArray, floatArray, flag, arch], 4));
    await expect(readGgufKind(file)).resolves.toEqual({ gguf: true, architecture: 'clip' });
  });

  it('says when a file is not GGUF', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const file = path.join(dir.path, 'x.gguf');
    await writeFile(file, 'not a model at all');
    await expect(readGgufKind(file)).resolves.toEqual({ gguf: false });
    await writeFile(file, '');
    await expect(readGgufKind(file)).resolves.toEqual({ gguf: false });
  });

  it('gives up quietly on a truncated header', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const file = path.join(dir.path, 'cut.gguf');
    await writeFile(file, header([ggufString('general.architecture').subarray(0, 6)], 1));
    await expect(readGgufKind(file)).resolves.toEqual({ gguf: true, architecture: undefined });
  });
});
