import { open } from 'node:fs/promises';
import { GembatchError } from '@gembatch/contracts';

/** GGUF value type names by enum value (`gguf_type`). */
const VALUE_TYPE_NAMES = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'bool',
  'string',
  'array',
  'u64',
  'i64',
  'f64',
] as const;
type ValueTypeName = (typeof VALUE_TYPE_NAMES)[number];
/** Arrays longer than this are summarised (length only), so reading a vocabulary stays cheap. */
const ARRAY_PREVIEW = 64;
/** Header bytes read per step; the reader grows its window as needed. */
const READ_STEP = 1 << 20;

/** One metadata entry as stored: its type (arrays as `array<item>`) and its value. */
export interface GgufHeaderValue {
  type: string;
  /** Scalars as numbers/strings/booleans (u64/i64 as bigint); arrays as their first 64 items. */
  value: unknown;
  /** Array length (arrays only). */
  length?: number;
}

export interface GgufHeaderTensor {
  name: string;
  dims: number[];
  /** ggml type enum value (0 f32, 1 f16, 8 q8_0, ...). */
  type: number;
  offset: bigint;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufHeaderValue>;
  tensors: GgufHeaderTensor[];
}

/**
 * Reads the header of a GGUF file (magic, version, metadata with exact value types, tensor
 * infos) without loading tensor data. For comparing generated files against reference ones.
 * Throws `GB_ERR_BAD_REQUEST` if the file is not GGUF or is cut short.
 */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    let buffer = Buffer.alloc(0);
    const ensure = async (end: number): Promise<void> => {
      if (end <= buffer.length) return;
      if (end > size) throw new GembatchError('GB_ERR_BAD_REQUEST', `${path} ends inside its GGUF header`);
      const next = Buffer.alloc(Math.min(size, Math.max(end, buffer.length + READ_STEP)));
      buffer.copy(next);
      await file.read(next, buffer.length, next.length - buffer.length, buffer.length);
      buffer = next;
    };
    let at = 0;
    const take = async (bytes: number): Promise<number> => {
      await ensure(at + bytes);
      const start = at;
      at += bytes;
      return start;
    };
    const u32 = async () => buffer.readUInt32LE(await take(4));
    const u64 = async () => buffer.readBigUInt64LE(await take(8));
    const string = async () => {
      const length = Number(await u64());
      const start = await take(length);
      return buffer.toString('utf8', start, start + length);
    };
    const scalar = async (type: ValueTypeName): Promise<unknown> => {
      switch (type) {
        case 'u8':
          return buffer.readUInt8(await take(1));
        case 'i8':
          return buffer.readInt8(await take(1));
        case 'u16':
          return buffer.readUInt16LE(await take(2));
        case 'i16':
          return buffer.readInt16LE(await take(2));
        case 'u32':
          return buffer.readUInt32LE(await take(4));
        case 'i32':
          return buffer.readInt32LE(await take(4));
        case 'f32':
          return buffer.readFloatLE(await take(4));
        case 'bool':
          return buffer.readUInt8(await take(1)) !== 0;
        case 'string':
          return await string();
        case 'u64':
          return buffer.readBigUInt64LE(await take(8));
        case 'i64':
          return buffer.readBigInt64LE(await take(8));
        case 'f64':
          return buffer.readDoubleLE(await take(8));
        case 'array':
          throw new GembatchError('GB_ERR_BAD_REQUEST', `${path}: nested GGUF arrays are not supported`);
      }
    };
    const typeName = (value: number): ValueTypeName => {
      const name = VALUE_TYPE_NAMES[value];
      if (name === undefined)
        throw new GembatchError('GB_ERR_BAD_REQUEST', `${path}: unknown GGUF value type ${value}`);
      return name;
    };

    await ensure(4);
    if (buffer.toString('latin1', 0, 4) !== 'GGUF')
      throw new GembatchError('GB_ERR_BAD_REQUEST', `${path} is not a GGUF file`);
    at = 4;
    const version = await u32();
    const tensorCount = Number(await u64());
    const metadataCount = Number(await u64());
    const metadata = new Map<string, GgufHeaderValue>();
    for (let i = 0; i < metadataCount; i++) {
      const key = await string();
      const type = typeName(await u32());
      if (type !== 'array') {
        metadata.set(key, { type, value: await scalar(type) });
        continue;
      }
      const itemType = typeName(await u32());
      const length = Number(await u64());
      const items: unknown[] = [];
      for (let j = 0; j < length; j++) {
        const item = await scalar(itemType);
        if (j < ARRAY_PREVIEW) items.push(item);
      }
      metadata.set(key, { type: `array<${itemType}>`, value: items, length });
    }
    const tensors: GgufHeaderTensor[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = await string();
      const dimCount = await u32();
      const dims: number[] = [];
      for (let j = 0; j < dimCount; j++) dims.push(Number(await u64()));
      tensors.push({ name, dims, type: await u32(), offset: await u64() });
    }
    return { version, metadata, tensors };
  } finally {
    await file.close();
  }
}
