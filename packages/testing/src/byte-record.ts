/** One field of a little-endian binary record: its byte offset, its width, and a number or (for 4 ASCII bytes) a tag. */
export type ByteField = readonly [offset: number, bytes: 2 | 4, value: number | string];

/**
 * A zero-filled buffer of `size` bytes with each field written little-endian at its offset: file
 * headers (ZIP, WAV) as a table of fields rather than a run of `writeUInt…LE` calls.
 */
export function littleEndianRecord(size: number, fields: readonly ByteField[]): Buffer {
  const record = Buffer.alloc(size);
  for (const [offset, bytes, value] of fields) {
    if (typeof value === 'string') record.write(value, offset, bytes, 'ascii');
    else if (bytes === 2) record.writeUInt16LE(value, offset);
    else record.writeUInt32LE(value, offset);
  }
  return record;
}
