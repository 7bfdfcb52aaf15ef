import { describe, expect, it } from 'vitest';
import { settleWithin } from './engine-close.ts';

describe('settleWithin', () => {
  it('is true at once for nothing to wait for', async () => {
    expect(await settleWithin([], 0)).toBe(true);
  });

  it('is true when every promise settles, rejections included, and never rejects', async () => {
    expect(await settleWithin([Promise.resolve(1), Promise.reject(new Error('failed job'))], 60_000)).toBe(true);
  });

  it('is false when one promise is still pending when the time runs out', async () => {
    const pending = new Promise<never>(() => undefined);
    expect(await settleWithin([Promise.resolve(1), pending], 1)).toBe(false);
  });
});
