import { open } from 'node:fs/promises';
import { GembatchError } from '@gembatch/contracts';
import { GGML_TYPE, Q8_0_BLOCK_BYTES, Q8_0_BLOCK_VALUES, tensorBytes, type GgmlTypeName } from './ggml-types.ts';
import { toHalfBits } from './half-float.ts';

/** GGUF metadata value types (`gguf_type` in gguf.h). */
const GGUF_VALUE_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
type ScalarType = Exclude<keyof typeof GGUF_VALUE_TYPE, 'array'>;

/** Data section alignment: GGUF's default, which `general.alignment` repeats. */
export const GGUF_ALIGNMENT = 32;
/** Values generated and written per chunk: bounds memory (1 MiB of f32) whatever the tensor size. */
const CHUNK_VALUES = 256 * 1024;

/** One metadata key/value. Arrays name their element type. */
export type GgufMetadataEntry =
  | { key: string; type: Exclude<ScalarType, 'string' | 'bool' | 'u64' | 'i64'>; value: number }
  | { key: string; type: 'u64' | 'i64'; value: number | bigint }
  | { key: string; type: 'string'; value: string }
  | { key: string; type: 'bool'; value: boolean }
  | { key: string; type: 'array'; itemType: 'string'; value: readonly string[] }
  | { key: string; type: 'array'; itemType: 'bool'; value: readonly boolean[] }
  | { key: string; type: 'array'; itemType: Exclude<ScalarType, 'string' | 'bool'>; value: ArrayLike<number> };

/**
 * Fills `out` with the next `out.length` values of a tensor, in storage order (ne0 fastest).
 * Called repeatedly with consecutive chunks; `offset` is the index of `out[0]` in the tensor.
 */
export type TensorSource = (out: Float32Array, offset: number) => void;

/** One tensor: its name, shape (`ne0` first, as in ggml), storage type and where its values come from. */
export interface GgufTensorSpec {
  name: string;
  dims: readonly number[];
  type: GgmlTypeName;
  source: TensorSource;
}

export interface GgufFileSummary {
  path: string;
  bytes: number;
  /** Total number of tensor values (parameters). */
  parameters: number;
}

/**
 * Writes a GGUF v3 file: header, metadata, tensor infos, then each tensor's data generated and
 * written chunk by chunk, so memory stays small however large the file. Tensors are laid out in
 * the order given, each aligned to `GGUF_ALIGNMENT`. Throws `GB_ERR_BAD_REQUEST` for shapes the
 * chosen type cannot store (Q8_0 needs rows that are a multiple of 32).
 */
export async function writeGgufFile(
  path: string,
  metadata: readonly GgufMetadataEntry[],
  tensors: readonly GgufTensorSpec[],
): Promise<GgufFileSummary> {
  const layout = layOut(tensors);
  const header = new HeaderBuilder();
  header.raw(Buffer.from('GGUF', 'latin1'));
  header.u32(3);
  header.u64(BigInt(tensors.length));
  header.u64(BigInt(metadata.length));
  for (const entry of metadata) header.metadata(entry);
  for (const [index, tensor] of tensors.entries()) {
    header.string(tensor.name);
    header.u32(tensor.dims.length);
    for (const dim of tensor.dims) header.u64(BigInt(dim));
    header.u32(GGML_TYPE[tensor.type]);
    header.u64(BigInt(layout.offsets[index] ?? 0));
  }
  header.padTo(GGUF_ALIGNMENT);
  const headerBytes = header.toBuffer();

  const file = await open(path, 'w');
  try {
    let position = 0;
    const write = async (buffer: Uint8Array): Promise<void> => {
      await file.write(buffer, 0, buffer.length, position);
      position += buffer.length;
    };
    await write(headerBytes);
    const values = new Float32Array(CHUNK_VALUES);
    for (const [index, tensor] of tensors.entries()) {
      const start = headerBytes.length + (layout.offsets[index] ?? 0);
      if (position < start) await write(Buffer.alloc(start - position));
      const elements = layout.elements[index] ?? 0;
      for (let offset = 0; offset < elements; offset += CHUNK_VALUES) {
        const chunk = values.subarray(0, Math.min(CHUNK_VALUES, elements - offset));
        tensor.source(chunk, offset);
        await write(encode(chunk, tensor.type));
      }
    }
    const end = headerBytes.length + layout.dataBytes;
    if (position < end) await write(Buffer.alloc(end - position));
    return { path, bytes: end, parameters: layout.elements.reduce((sum, n) => sum + n, 0) };
  } finally {
    await file.close();
  }
}

function layOut(tensors: readonly GgufTensorSpec[]): { offsets: number[]; elements: number[]; dataBytes: number } {
  const offsets: number[] = [];
  const elements: number[] = [];
  let cursor = 0;
  for (const tensor of tensors) {
    if (tensor.dims.length === 0 || tensor.dims.some((dim) => !Number.isInteger(dim) || dim <= 0)) {
      throw new GembatchError(
        'GB_ERR_BAD_REQUEST',
        `tensor ${tensor.name} has an invalid shape [${tensor.dims.join(', ')}]`,
      );
    }
    if (tensor.type === 'q8_0' && (tensor.dims[0] ?? 0) % Q8_0_BLOCK_VALUES !== 0) {
      throw new GembatchError(
        'GB_ERR_BAD_REQUEST',
        `tensor ${tensor.name}: Q8_0 needs ne0 to be a multiple of ${Q8_0_BLOCK_VALUES}, got ${tensor.dims[0]}`,
      );
    }
    const count = tensor.dims.reduce((product, dim) => product * dim, 1);
    cursor = alignUp(cursor, GGUF_ALIGNMENT);
    offsets.push(cursor);
    elements.push(count);
    cursor += tensorBytes(tensor.type, count);
  }
  return { offsets, elements, dataBytes: alignUp(cursor, GGUF_ALIGNMENT) };
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** Encodes f32 values as stored in the file. Chunks are multiples of 32 values except a tensor's last. */
function encode(values: Float32Array, type: GgmlTypeName): Buffer {
  switch (type) {
    case 'f32':
      return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    case 'f16': {
      // Typed arrays use the platform byte order; GGUF is little-endian, as are x86-64 and arm64.
      const halves = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) halves[i] = toHalfBits(values[i] ?? 0);
      return Buffer.from(halves.buffer, halves.byteOffset, halves.byteLength);
    }
    case 'q8_0':
      return quantizeQ8_0(values);
  }
}

/**
 * Q8_0 as ggml's reference `quantize_row_q8_0_ref`: per 32 values, scale d = max|x| / 127 stored
 * as f16, then round(x / d) as int8 (half away from zero, like C's roundf).
 */
export function quantizeQ8_0(values: Float32Array): Buffer {
  const blocks = values.length / Q8_0_BLOCK_VALUES;
  const out = Buffer.allocUnsafe(blocks * Q8_0_BLOCK_BYTES);
  const signed = new Int8Array(out.buffer, out.byteOffset, out.length);
  for (let block = 0; block < blocks; block++) {
    const base = block * Q8_0_BLOCK_VALUES;
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK_VALUES; i++) amax = Math.max(amax, Math.abs(values[base + i] ?? 0));
    // 127 = the largest int8 magnitude used symmetrically.
    const d = amax / 127;
    const inverse = d === 0 ? 0 : 1 / d;
    const at = block * Q8_0_BLOCK_BYTES;
    out.writeUInt16LE(toHalfBits(d), at);
    for (let i = 0; i < Q8_0_BLOCK_VALUES; i++) {
      const scaled = (values[base + i] ?? 0) * inverse;
      signed[at + 2 + i] = scaled < 0 ? -Math.round(-scaled) : Math.round(scaled);
    }
  }
  return out;
}

/** Accumulates the header in small buffers (the vocabulary makes it tens of kB, never more). */
class HeaderBuilder {
  readonly #parts: Buffer[] = [];
  #length = 0;

  raw(buffer: Buffer): void {
    this.#parts.push(buffer);
    this.#length += buffer.length;
  }

  u32(value: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(value);
    this.raw(b);
  }

  u64(value: bigint): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(value);
    this.raw(b);
  }

  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(BigInt(bytes.length));
    this.raw(bytes);
  }

  metadata(entry: GgufMetadataEntry): void {
    this.string(entry.key);
    this.u32(GGUF_VALUE_TYPE[entry.type]);
    if (entry.type !== 'array') {
      this.#scalar(entry.type, entry.value);
      return;
    }
    this.u32(GGUF_VALUE_TYPE[entry.itemType]);
    this.u64(BigInt(entry.value.length));
    for (let i = 0; i < entry.value.length; i++)
      this.#scalar(entry.itemType, entry.value[i] as number | string | boolean);
  }

  #scalar(type: ScalarType, value: number | bigint | string | boolean): void {
    if (type === 'string') return this.string(String(value));
    if (type === 'bool') return this.raw(Buffer.from([value ? 1 : 0]));
    const sizes: Record<Exclude<ScalarType, 'string' | 'bool'>, number> = {
      u8: 1,
      i8: 1,
      u16: 2,
      i16: 2,
      u32: 4,
      i32: 4,
      f32: 4,
      u64: 8,
      i64: 8,
      f64: 8,
    };
    const b = Buffer.allocUnsafe(sizes[type]);
    switch (type) {
      case 'u8':
        b.writeUInt8(Number(value));
        break;
      case 'i8':
        b.writeInt8(Number(value));
        break;
      case 'u16':
        b.writeUInt16LE(Number(value));
        break;
      case 'i16':
        b.writeInt16LE(Number(value));
        break;
      case 'u32':
        b.writeUInt32LE(Number(value));
        break;
      case 'i32':
        b.writeInt32LE(Number(value));
        break;
      case 'f32':
        b.writeFloatLE(Number(value));
        break;
      case 'u64':
        b.writeBigUInt64LE(BigInt(value));
        break;
      case 'i64':
        b.writeBigInt64LE(BigInt(value));
        break;
      case 'f64':
        b.writeDoubleLE(Number(value));
        break;
    }
    this.raw(b);
  }

  padTo(alignment: number): void {
    const pad = alignUp(this.#length, alignment) - this.#length;
    if (pad > 0) this.raw(Buffer.alloc(pad));
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#parts, this.#length);
  }
}
