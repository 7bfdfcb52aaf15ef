import { open, type FileHandle } from 'node:fs/promises';

/** What a GGUF file's header says it holds. */
export type GgufKind = { gguf: false } | { gguf: true; architecture: string | undefined };

/** gguf-py writes `general.architecture` first; a few keys in is far enough to look. */
const KEYS_SCANNED = 16;
/** Bytes read per disk read while walking the header. */
const CHUNK_BYTES = 65_536;
/** Longest key or string value believed (anything longer means a corrupt header). */
const MAX_STRING_BYTES = 1 << 20;

/** Byte sizes of GGUF scalar value types (by type id). */
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;

class HeaderCursor {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;
  position = 0;

  constructor(private readonly handle: FileHandle) {}

  async take(length: number): Promise<Buffer> {
    const end = this.position + length;
    if (end > this.bufferStart + this.buffer.length) {
      const size = Math.max(CHUNK_BYTES, length);
      const chunk = Buffer.alloc(size);
      const { bytesRead } = await this.handle.read(chunk, 0, size, this.position);
      if (bytesRead < length) throw new RangeError('GGUF header ends early');
      this.buffer = chunk.subarray(0, bytesRead);
      this.bufferStart = this.position;
    }
    const slice = this.buffer.subarray(this.position - this.bufferStart, end - this.bufferStart);
    this.position = end;
    return slice;
  }

  async u32(): Promise<number> {
    return (await this.take(4)).readUInt32LE(0);
  }

  async u64(): Promise<number> {
    return Number((await this.take(8)).readBigUInt64LE(0));
  }

  async string(): Promise<string> {
    const length = await this.u64();
    if (length > MAX_STRING_BYTES) throw new RangeError('GGUF string too long');
    return (await this.take(length)).toString('utf8');
  }

  async skipValue(type: number): Promise<void> {
    if (type === STRING) {
      await this.string();
      return;
    }
    if (type === ARRAY) {
      const itemType = await this.u32();
      const count = await this.u64();
      const itemBytes = SCALAR_BYTES[itemType];
      if (itemBytes !== undefined) this.position += itemBytes * count;
      else for (let i = 0; i < count; i += 1) await this.skipValue(itemType);
      return;
    }
    const bytes = SCALAR_BYTES[type];
    if (bytes === undefined) throw new RangeError(`unknown GGUF value type ${type}`);
    this.position += bytes;
  }
}

/**
 * Reads `general.architecture` from a GGUF header without loading the file (`gemma4`, `llama`,
 * or `clip` for a multimodal projector). `{ gguf: false }` when the file is not GGUF;
 * `architecture` is undefined when the key is not among the first ones.
 */
export async function readGgufKind(file: string): Promise<GgufKind> {
  const handle = await open(file, 'r');
  try {
    const cursor = new HeaderCursor(handle);
    const magic = await cursor.take(4).catch(() => Buffer.alloc(0));
    if (magic.toString('ascii') !== 'GGUF') return { gguf: false };
    await cursor.u32();
    await cursor.u64();
    const keys = await cursor.u64();
    for (let index = 0; index < Math.min(keys, KEYS_SCANNED); index += 1) {
      const key = await cursor.string();
      const type = await cursor.u32();
      if (key === 'general.architecture' && type === STRING) return { gguf: true, architecture: await cursor.string() };
      await cursor.skipValue(type);
    }
    return { gguf: true, architecture: undefined };
  } catch {
    return { gguf: true, architecture: undefined };
  } finally {
    await handle.close();
  }
}
