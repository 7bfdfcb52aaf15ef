import { ExtractedDocument, GembatchError, type GenerateJobData, type JobResultDocument } from '@gembatch/contracts';
import { getJson, type BlobStore } from '@gembatch/storage';
import type { TaskInput } from './task-runner.ts';

export interface LoadedInput extends TaskInput {
  /** Content-free notes on how the input was extracted (for the result document). */
  extraction?: NonNullable<JobResultDocument['extraction']>;
}

/** Reads a generate job's input from the blob store: inline text, or an extracted document with its media. */
export async function loadInput(data: GenerateJobData, blobs: BlobStore): Promise<LoadedInput> {
  // A chunk may be blank (a run of spaces cut out of a long text): only a whole input must have text.
  if (data.chunk?.text_sha256) return { text: await readText(blobs, data.chunk.text_sha256, true), media: [] };
  if (data.input.type === 'text') return { text: await readText(blobs, data.input.sha256), media: [] };
  const document = await getJson(blobs, data.input.sha256, ExtractedDocument);
  // A media chunk carries only its own parts (a run of pages or audio segments), no text.
  const indexes = data.chunk?.media_indexes;
  const parts = indexes ? indexes.map((i) => document.media[i]).filter((part) => part !== undefined) : document.media;
  const media = await Promise.all(
    parts.map(async (part) => ({
      kind: part.kind,
      path: await blobs.path(part.sha256),
      ...(part.start_s !== undefined ? { startS: part.start_s } : {}),
      ...(part.end_s !== undefined ? { endS: part.end_s } : {}),
    })),
  );
  return {
    text: indexes ? '' : document.text,
    media,
    extraction: {
      media_type: document.media_type,
      pages_ocr: document.pages.filter((p) => p.source === 'ocr').map((p) => p.index),
      pages_image: document.pages.filter((p) => p.source === 'image').map((p) => p.index),
      warnings: document.warnings,
    },
  };
}

async function readText(blobs: BlobStore, sha256: string, allowBlank = false): Promise<string> {
  const text = (await blobs.read(sha256)).toString('utf8');
  if (!allowBlank && text.trim().length === 0) throw new GembatchError('GB_ERR_EMPTY_INPUT', 'the input text is empty');
  return text;
}
