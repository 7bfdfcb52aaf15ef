import { describe, expect, it } from 'vitest';
import { PcmSegmenter } from './pcm-segmenter.ts';

/** 16-bit PCM of `samples` samples, loud except inside [quietFrom, quietTo). */
function pcm(samples: number, quietFrom = -1, quietTo = -1): Buffer {
  const buffer = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++)
    buffer.writeInt16LE(i >= quietFrom && i < quietTo ? 0 : i % 2 === 0 ? 8000 : -8000, i * 2);
  return buffer;
}

describe('PcmSegmenter', () => {
  it('cuts at the limit without a search window and keeps every sample in order', () => {
    const segmenter = new PcmSegmenter({ maxSamples: 100 });
    const segments = [...segmenter.push(pcm(250)), ...segmenter.finish()];
    expect(segments.map((s) => [s.startSample, s.endSample])).toEqual([
      [0, 100],
      [100, 200],
      [200, 250],
    ]);
    expect(segmenter.totalSamples).toBe(250);
  });

  it('moves a cut back into the quietest window within the search range', () => {
    const segmenter = new PcmSegmenter({ maxSamples: 1000, searchSamples: 400, windowSamples: 20 });
    const segments = [...segmenter.push(pcm(1500, 700, 740)), ...segmenter.finish()];
    expect(segments[0]?.endSample).toBe(740);
    expect(segments[1]).toMatchObject({ startSample: 740, endSample: 1500 });
  });

  it('cuts steady sound without pauses exactly at the limit', () => {
    const segmenter = new PcmSegmenter({ maxSamples: 1000, searchSamples: 400, windowSamples: 20 });
    expect(segmenter.push(pcm(1500))[0]?.endSample).toBe(1000);
  });

  it('handles chunks split inside a sample and tiny chunks', () => {
    const segmenter = new PcmSegmenter({ maxSamples: 4 });
    const data = pcm(10);
    const segments = [];
    for (let i = 0; i < data.length; i++) segments.push(...segmenter.push(data.subarray(i, i + 1)));
    segments.push(...segmenter.finish());
    expect(Buffer.concat(segments.map((s) => s.pcm))).toEqual(data);
    expect(segments.every((s) => s.endSample - s.startSample <= 4)).toBe(true);
  });

  it('emits nothing for an empty stream and rejects a non-positive limit', () => {
    expect(new PcmSegmenter({ maxSamples: 10 }).finish()).toEqual([]);
    expect(() => new PcmSegmenter({ maxSamples: 0 })).toThrow(RangeError);
  });
});
