import { existsSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { createLogger, type Logger } from '@gembatch/telemetry';
import { createLlamaCppEngine, type LlamaCppEngine, type LlamaCppEngineOptions } from '../src/index.ts';

/**
 * Opens an engine on the CPU with one thread (tests assume a small shared CPU; more threads than free cores only slow
 * decoding) and closes it after the test.
 */
export async function openEngine(
  options: Omit<LlamaCppEngineOptions, 'gpu' | 'threads'> & Partial<Pick<LlamaCppEngineOptions, 'threads'>>,
): Promise<LlamaCppEngine> {
  const engine = await createLlamaCppEngine({ gpu: false, threads: 1, ...options });
  onTestFinished(() => engine.close());
  return engine;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** A file of the shared corpus, or `undefined` when the corpus is absent (tests using it skip). */
export function corpusFile(relative: string): string | undefined {
  const dir = path.resolve(repoRoot, process.env.GEMBATCH_CORPUS_DIR ?? '../shared/corpus');
  const file = path.join(dir, relative);
  return existsSync(file) ? file : undefined;
}

/** A plain completion prompt. */
export const COMPLETION = { system: '', instruction: '', completionCue: '' };

/** A logger whose JSON lines are kept in `lines`, to check what an engine logged. */
export function capturedLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    service: 'test',
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    }),
  });
  return { logger, lines };
}
