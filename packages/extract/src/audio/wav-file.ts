/**
 * Wraps signed 16-bit little-endian mono PCM in a RIFF/WAVE container (the 44-byte canonical
 * header), the format every llama.cpp audio loader reads.
 */
export function pcm16MonoToWav(pcm: Buffer, sampleRate: number): Buffer {
  // Why 44: RIFF (12) + "fmt " chunk (8 + 16) + "data" chunk header (8).
  const header = Buffer.alloc(44);
  const bytesPerSample = 2;
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  // Format 1 = integer PCM.
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * bytesPerSample, 28);
  header.writeUInt16LE(bytesPerSample, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}
