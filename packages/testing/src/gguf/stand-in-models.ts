import { copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTestModel, type TestModelName } from './test-models.ts';

/**
 * Writes a tiny real GGUF (the `tiny` test model, ~0.6 MB) under each of `fileNames` in
 * `modelsDir`, so a node that plans with `GEMBATCH_VRAM_BYTES` picks its catalog quantization and
 * finds "that" file already there instead of downloading 7-24 GB. The quant label the node reports
 * is the catalog entry's; the weights are the stand-in's. Existing files are left alone (a real
 * download is never overwritten). Returns the paths written or kept.
 */
export async function writeStandInModels(
  modelsDir: string,
  fileNames: readonly string[],
  preset: TestModelName = 'tiny',
): Promise<string[]> {
  const source = await ensureTestModel(preset);
  await mkdir(modelsDir, { recursive: true });
  const paths: string[] = [];
  for (const name of fileNames) {
    const target = join(modelsDir, name);
    if (!existsSync(target)) await copyFile(source, target);
    paths.push(target);
  }
  return paths;
}
