import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from '@gembatch/testing';
import { FolderRoot, scanFolder, sha256File, writeFileAtomic } from '../src/index.ts';

async function layout() {
  const dir = await tempDir();
  onTestFinished(() => dir.cleanup());
  const root = join(dir.path, 'root');
  await mkdir(join(root, 'inbox', 'sub'), { recursive: true });
  await mkdir(join(root, 'shared'));
  await mkdir(join(dir.path, 'outside'));
  await writeFile(join(root, 'inbox', 'b.txt'), 'bee');
  await writeFile(join(root, 'inbox', 'a.txt'), 'ay');
  await writeFile(join(root, 'inbox', 'sub', 'c.txt'), 'sea');
  await writeFile(join(root, 'inbox', '.hidden'), 'no');
  await writeFile(join(root, 'shared', 'd.txt'), 'dee');
  await writeFile(join(dir.path, 'outside', 'secret.txt'), 'nope');
  await symlink(join(dir.path, 'outside', 'secret.txt'), join(root, 'inbox', 'leak.txt'));
  await symlink(join(root, 'shared', 'd.txt'), join(root, 'inbox', 'inside-link.txt'));
  return { dir, root: await FolderRoot.open(root) };
}

describe('scanFolder', () => {
  it('lists files in name order with their sha256, skipping dot-files and symlinks that leave the root', async () => {
    const { root } = await layout();
    const found = await scanFolder(root, join(root.path, 'inbox'), 100);
    expect(found.map((f) => f.relative)).toEqual(['a.txt', 'b.txt', 'inside-link.txt', 'sub/c.txt']);
    expect(found[0]?.sha256).toBe(await sha256File(join(root.path, 'inbox', 'a.txt')));
    expect(found.find((f) => f.relative === 'inside-link.txt')?.path).toBe(join(root.path, 'shared', 'd.txt'));
    expect(await scanFolder(root, join(root.path, 'inbox'), 2)).toHaveLength(2);
  });

  it('takes the hash of an unchanged file (same size and mtime) from the cache instead of reading it', async () => {
    const { root } = await layout();
    const first = await scanFolder(root, join(root.path, 'inbox'), 100);
    const cached = new Map(first.map((f) => [f.relative, f]));
    const fake = 'f'.repeat(64);
    const again = await scanFolder(root, join(root.path, 'inbox'), 100, undefined, (relative, bytes, mtimeMs) => {
      const before = cached.get(relative);
      return relative === 'b.txt' && before?.bytes === bytes && before.mtimeMs === mtimeMs ? fake : undefined;
    });
    expect(again.find((f) => f.relative === 'b.txt')?.sha256).toBe(fake);
    expect(again.find((f) => f.relative === 'a.txt')?.sha256).toBe(first[0]?.sha256);
  });
});

describe('FolderRoot and writeFileAtomic', () => {
  it('resolves folders inside the root only, creates output folders, and writes whole files with no temp file left', async () => {
    const { root, dir } = await layout();
    await expect(root.existingFolder('inbox', 'source_folder')).resolves.toBe(join(root.path, 'inbox'));
    await expect(root.existingFolder(join(dir.path, 'outside'), 'source_folder')).rejects.toThrow(
      /outside the schedule root/,
    );
    await expect(root.existingFolder('inbox/a.txt', 'source_folder')).rejects.toThrow(/not a folder/);
    const out = await root.folderToWrite('results/2026/11', 'output_folder');
    expect(out).toBe(join(root.path, 'results', '2026', '11'));
    await writeFileAtomic(join(out, 'a.json'), '{"ok":true}');
    await writeFileAtomic(join(out, 'a.json'), '{"ok":2}');
    expect(await readFile(join(out, 'a.json'), 'utf8')).toBe('{"ok":2}');
    expect(await readdir(out)).toEqual(['a.json']);
  });
});
