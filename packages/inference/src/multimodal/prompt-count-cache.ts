import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { LruMap } from '../lru-map.ts';
import type { PromptCount } from './host-protocol.ts';

/** Counts kept: enough for every slot's request to be counted and then run, with room to spare. */
const DEFAULT_CAPACITY = 256;

/**
 * Remembers the token count of a prompt with its media, so a request counted by
 * `countPromptTokens` is not decoded and tokenized again when it is generated (media decoding
 * is the costly, serialized part of the host's work). Keys are SHA-256 digests of the prompt,
 * the media paths and each file's size and modification time, so no text is kept and a file
 * replaced under the same name is counted afresh.
 */
export class PromptCountCache extends LruMap<string, PromptCount> {
  /** @param capacity Entries kept, least recently used dropped first. Defaults to `256`. */
  constructor(capacity = DEFAULT_CAPACITY) {
    super(capacity);
  }

  /**
   * The cache key of a prompt and its media files. Rejects (from `fs.stat`) when a media file is
   * missing, which callers turn into a media error before llama.cpp can abort on it.
   */
  async keyFor(prompt: string, mediaPaths: readonly string[]): Promise<string> {
    const hash = createHash('sha256').update(prompt).update('\u0000');
    for (const file of mediaPaths) {
      const info = await stat(file);
      hash.update(`${file}\u0000${info.size}\u0000${info.mtimeMs}\u0000`);
    }
    return hash.digest('hex');
  }
}
