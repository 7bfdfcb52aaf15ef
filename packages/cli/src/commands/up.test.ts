import { describe, expect, test } from 'vitest';
import { parseVramList, stackOptionsFromFlags } from './up.ts';

describe('gembatch up fleet flags', () => {
  test('--simulate-vram takes a comma-separated list of byte sizes', () => {
    expect(parseVramList('12GiB, 16GiB,32GiB')).toEqual(['12GiB', '16GiB', '32GiB']);
    expect(parseVramList('')).toEqual([]);
    expect(() => parseVramList('12GiB,lots')).toThrow(/lots is not a byte size/);
    expect(() => parseVramList('0')).toThrow(/not a byte size/);
  });

  test('flags win over GEMBATCH_WORKERS and GEMBATCH_SIMULATE_VRAM, which apply without them', () => {
    expect(
      stackOptionsFromFlags({}, { GEMBATCH_WORKERS: '3', GEMBATCH_SIMULATE_VRAM: '12GiB,16GiB,32GiB' }),
    ).toMatchObject({ workers: 3, simulateVram: ['12GiB', '16GiB', '32GiB'] });
    expect(stackOptionsFromFlags({ workers: '2', 'simulate-vram': '24GB' }, { GEMBATCH_WORKERS: '3' })).toMatchObject({
      workers: 2,
      simulateVram: ['24GB'],
    });
    expect(stackOptionsFromFlags({}, {})).not.toHaveProperty('workers');
    expect(() => stackOptionsFromFlags({ workers: '0' }, {})).toThrow(/--workers/);
  });
});
