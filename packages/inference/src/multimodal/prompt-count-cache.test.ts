import { utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from '@gembatch/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PromptCountCache } from './prompt-count-cache.ts';

describe('PromptCountCache', () => {
  it('keys on the prompt and on each media file as it is now', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const file = path.join(dir.path, 'a.png');
    await writeFile(file, 'one');
    const cache = new PromptCountCache();
    const key = await cache.keyFor('prompt', [file]);
    expect(await cache.keyFor('prompt', [file])).toBe(key);
    expect(await cache.keyFor('other prompt', [file])).not.toBe(key);
    expect(key).not.toContain('prompt');
    await writeFile(file, 'replaced');
    await utimes(file, new Date(0), new Date(0));
    expect(await cache.keyFor('prompt', [file])).not.toBe(key);
  });

  it('rejects when a media file is missing', async () => {
    await expect(new PromptCountCache().keyFor('p', ['/nonexistent/x.png'])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('drops the least recently used entry beyond its capacity', () => {
    const cache = new PromptCountCache(2);
    cache.set('a', { promptTokens: 1, mediaTokens: 0 });
    cache.set('b', { promptTokens: 2, mediaTokens: 0 });
    expect(cache.get('a')).toEqual({ promptTokens: 1, mediaTokens: 0 });
    cache.set('c', { promptTokens: 3, mediaTokens: 0 });
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
  });
});
