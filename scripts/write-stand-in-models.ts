/**
 * `pnpm models:stand-ins [models dir]`: writes a tiny GGUF under every Gemma 4 12B catalog file
 * name (default `.gembatch/models`), so `gembatch up --workers 3 --simulate-vram 12GiB,16GiB,32GiB`
 * runs on a laptop: each worker picks a different quantization and loads the stand-in for it.
 * Never use it in a models directory meant for real work: the files are random tiny weights.
 */
import { resolve } from 'node:path';
import { GEMMA4_12B_CATALOG } from '@gembatch/inference';
import { writeStandInModels } from '@gembatch/testing/stand-in-models';

const dir = resolve(process.argv[2] ?? '.gembatch/models');
const written = await writeStandInModels(
  dir,
  GEMMA4_12B_CATALOG.entries.map((e) => e.file),
);
process.stdout.write(
  `${written.length} stand-in models in ${dir} (tiny random weights named after the catalog's quantizations)\n`,
);
