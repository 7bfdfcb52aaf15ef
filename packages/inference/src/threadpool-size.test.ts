import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { engineThreadpoolSize, threadpoolShortfall, threadpoolSizeOf } from './threadpool-size.ts';

describe('engineThreadpoolSize', () => {
  it('is one thread per core, at least 2', () => {
    expect(engineThreadpoolSize(1)).toBe(2);
    expect(engineThreadpoolSize(2)).toBe(2);
    expect(engineThreadpoolSize(4)).toBe(4);
    expect(engineThreadpoolSize(16)).toBe(16);
    expect(engineThreadpoolSize(96)).toBe(96);
  });
});

describe('threadpoolSizeOf', () => {
  it('reads UV_THREADPOOL_SIZE as libuv does', () => {
    expect(threadpoolSizeOf(undefined)).toBe(4);
    expect(threadpoolSizeOf('16')).toBe(16);
    expect(threadpoolSizeOf('')).toBe(1);
    expect(threadpoolSizeOf('0')).toBe(1);
    expect(threadpoolSizeOf('abc')).toBe(1);
    expect(threadpoolSizeOf('8threads')).toBe(8);
    expect(threadpoolSizeOf('5000')).toBe(1024);
  });

  // The rule above, checked against a real Node: the threads a process runs after its pool has
  // started, for each value, less those of a process started with one pool thread.
  it.runIf(process.platform === 'linux')('matches the pool a real Node process starts', () => {
    const threads = (value: string | undefined) => {
      const { UV_THREADPOOL_SIZE: _, ...env } = process.env;
      const script =
        "require('node:fs').readFile(__filename, () => process.stdout.write(String(require('node:fs').readdirSync('/proc/self/task').length)))";
      const run = spawnSync(process.execPath, ['-e', script], {
        env: value === undefined ? env : { ...env, UV_THREADPOOL_SIZE: value },
        encoding: 'utf8',
      });
      return Number(run.stdout);
    };
    const base = threads('1') - 1;
    for (const value of [undefined, '', '0', '3', '9'])
      expect(threads(value) - base, `UV_THREADPOOL_SIZE=${value}`).toBe(threadpoolSizeOf(value));
  });
});

describe('threadpoolShortfall', () => {
  it('warns, naming the variable and the size to set, only when the pool is below both cores and sequences', () => {
    expect(threadpoolShortfall(4, 2, 16)).toBeUndefined();
    expect(threadpoolShortfall(4, 16, 4)).toBeUndefined();
    expect(threadpoolShortfall(16, 16, 64)).toBeUndefined();
    const warning = threadpoolShortfall(4, 16, 64);
    expect(warning).toContain('UV_THREADPOOL_SIZE=4 lets 4 of 64 sequences');
    expect(warning).toContain('UV_THREADPOOL_SIZE=16');
  });
});
