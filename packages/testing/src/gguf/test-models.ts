import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GembatchError } from '@gembatch/contracts';
import { writeLlamaGguf, type LlamaGgufSpec } from './llama-gguf.ts';
import { GEMMA_STYLE_CHAT_TEMPLATE } from './gemma-chat-template.ts';

/**
 * Model shapes tests use. `tiny` (~0.56M parameters, ~0.6 MB) loads in tens of milliseconds and
 * decodes at well over 1000 tok/s on one CPU thread; `tinyChat` adds a Gemma-style chat template;
 * `bench` (102M parameters, ~104 MiB) is big enough for decode to be memory-bound, for benchmarks.
 */
export const TEST_MODELS = {
  tiny: {
    layers: 2,
    embeddingLength: 128,
    feedForwardLength: 256,
    heads: 4,
    kvHeads: 2,
    contextLength: 4096,
    vocabSize: 1024,
    type: 'q8_0',
    name: 'gembatch-tiny',
  },
  tinyChat: {
    layers: 2,
    embeddingLength: 128,
    feedForwardLength: 256,
    heads: 4,
    kvHeads: 2,
    contextLength: 4096,
    vocabSize: 1024,
    type: 'q8_0',
    name: 'gembatch-tiny-chat',
    chatTemplate: GEMMA_STYLE_CHAT_TEMPLATE,
  },
  bench: {
    layers: 16,
    embeddingLength: 768,
    feedForwardLength: 2048,
    heads: 12,
    kvHeads: 4,
    contextLength: 4096,
    vocabSize: 1024,
    type: 'q8_0',
    name: 'gembatch-bench',
  },
} as const satisfies Record<string, LlamaGgufSpec>;

export type TestModelName = keyof typeof TEST_MODELS;

/**
 * Bumped whenever the writer's output changes for the same spec, so stale cached files are
 * never reused.
 */
const WRITER_VERSION = 1;

/** Files being written by this process, so parallel callers share one write. */
const pending = new Map<string, Promise<string>>();

/**
 * The path of a model file for `preset` (a name from `TEST_MODELS` or a full spec), writing it
 * on first use into `<repo>/node_modules/.cache/gembatch-test-models/<hash>.gguf`. The file is
 * written under a temporary name and renamed into place, so concurrent test files never see a
 * half-written model. Same spec, same bytes, same path.
 */
export async function ensureTestModel(preset: TestModelName | LlamaGgufSpec): Promise<string> {
  const spec: LlamaGgufSpec = typeof preset === 'string' ? specFor(preset) : preset;
  const path = join(testModelCacheDir(), `${cacheKey({ kind: 'llama', spec })}.gguf`);
  return await ensureCachedFile(path, (tmp) => writeLlamaGguf(tmp, spec).then(() => undefined));
}

function specFor(name: string): LlamaGgufSpec {
  if (!Object.hasOwn(TEST_MODELS, name)) {
    throw new GembatchError(
      'GB_ERR_BAD_REQUEST',
      `unknown test model "${name}"; use one of ${Object.keys(TEST_MODELS).join(', ')} or a LlamaGgufSpec`,
    );
  }
  return TEST_MODELS[name as TestModelName];
}

/** Directory of the cached generated models: `<repo>/node_modules/.cache/gembatch-test-models`. */
export function testModelCacheDir(): string {
  return join(findRepoRoot(), 'node_modules', '.cache', 'gembatch-test-models');
}

/** Stable hash of what determines a generated file's bytes. */
export function cacheKey(value: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify({ writer: WRITER_VERSION, value }, sortedKeys))
    .digest('hex')
    .slice(0, 32);
}

/**
 * Returns `path` once it exists, creating it with `write(tmpPath)` and an atomic rename if not.
 * One write per path per process; across processes the last rename wins with identical bytes.
 */
export async function ensureCachedFile(path: string, write: (tmpPath: string) => Promise<void>): Promise<string> {
  if (existsSync(path)) return path;
  let job = pending.get(path);
  if (!job) {
    job = (async () => {
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        await write(tmp);
        await rename(tmp, path);
      } finally {
        await rm(tmp, { force: true });
      }
      return path;
    })().finally(() => pending.delete(path));
    pending.set(path, job);
  }
  return await job;
}

function sortedKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)));
}

/** The monorepo root: the nearest directory above this file with a `pnpm-workspace.yaml`. */
export function findRepoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new GembatchError('GB_ERR_CONFIG', `no pnpm-workspace.yaml above ${from}`);
    dir = parent;
  }
}
