import type { ExtractedDocument, SerializedError } from '@gembatch/contracts';
import type { ExtractOptions } from '../extract-file.ts';

/**
 * Messages between an `ExtractionPool` and its extraction processes (`extraction-child.ts`),
 * over Node's IPC channel with `serialization: 'advanced'` (buffers travel as bytes).
 */

/** What crosses to the child: everything but the callbacks (putBlob becomes `put` messages, the signal a kill). */
export type ChildExtractOptions = Omit<ExtractOptions, 'putBlob' | 'signal'>;

export type ParentToChild =
  | { type: 'extract'; job: number; options: ChildExtractOptions }
  | { type: 'put-result'; job: number; seq: number; sha256: string }
  | { type: 'put-failed'; job: number; seq: number; error: SerializedError };

export type ChildToParent =
  | { type: 'ready' }
  | { type: 'put'; job: number; seq: number; bytes: Uint8Array; mime: string }
  /**
   * A run of the result's text (its pieces concatenated), sent before `done` (whose document then
   * has `text: ''`); the next one follows once it is written.
   */
  | { type: 'text'; job: number; pieces: string[] }
  | { type: 'done'; job: number; document: ExtractedDocument }
  | { type: 'failed'; job: number; error: SerializedError };
