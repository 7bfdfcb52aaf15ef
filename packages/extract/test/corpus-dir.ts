import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findRepoRoot } from '@gembatch/testing';

/** The shared corpus (`GEMBATCH_CORPUS_DIR`, default `../shared/corpus` from the repo root), or `undefined` when absent. */
export function corpusDir(): string | undefined {
  const dir = resolve(findRepoRoot(), process.env.GEMBATCH_CORPUS_DIR ?? join('..', 'shared', 'corpus'));
  return existsSync(join(dir, 'README.md')) ? dir : undefined;
}
