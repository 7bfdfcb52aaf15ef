import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TASKS, TASK_NAMES } from './registry.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '../../../..');
/** Files of `tasks/` that are not tasks. */
const SHARED = new Set(['define-task.ts', 'registry.ts', 'index.ts', 'redaction.ts']);

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name));
}

describe('the task registry', () => {
  it('holds each task under its own name, defined in its own file', async () => {
    for (const name of TASK_NAMES) {
      expect(TASKS[name].name).toBe(name);
      const file = (await import(`./${name}.ts`)) as Record<string, unknown>;
      expect(file[name], `tasks/${name}.ts exports the ${name} task`).toBe(TASKS[name]);
    }
    // Every task file is registered (a task file without its registry line fails here).
    const taskFiles = (await readdir(here)).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !SHARED.has(f),
    );
    expect(taskFiles.map((f) => f.replace(/\.ts$/, '')).sort()).toEqual([...TASK_NAMES].sort());
  });

  it('is the only place that names a task: no service or package branches on one', async () => {
    const names = TASK_NAMES.join('|');
    const branch = new RegExp(`\\btask\\s*[!=]==?\\s*'(${names})'|TASKS\\.(${names})\\b`);
    const offenders: string[] = [];
    for (const root of ['packages', 'services']) {
      for (const pkg of await readdir(join(repoRoot, root))) {
        const src = join(repoRoot, root, pkg, 'src');
        const files = await sourceFiles(src).catch(() => []);
        for (const file of files) {
          if (file.startsWith(here)) continue;
          const lines = (await readFile(file, 'utf8')).split('\n');
          lines.forEach((line, i) => {
            if (branch.test(line)) offenders.push(`${relative(repoRoot, file)}:${i + 1}`);
          });
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
