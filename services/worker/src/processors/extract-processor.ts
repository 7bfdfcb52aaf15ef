import {
  GembatchError,
  jobSpecOf,
  QUEUE_NAMES,
  TASKS,
  type ExtractedDocument,
  type ExtractJobData,
  type GenerateJobData,
  type NodeCapability,
} from '@gembatch/contracts';
import type { ExtractLimits, ExtractOptions } from '@gembatch/extract';
import type { Processor } from '@gembatch/queue';
import { putJson, type BlobStore } from '@gembatch/storage';

export interface ExtractProcessorDeps {
  blobs: BlobStore;
  limits: ExtractLimits;
  scannedPages: 'auto' | 'ocr' | 'vision';
  /** Capabilities of the live fleet (union over nodes), read at each job. */
  fleetCapabilities(): Promise<Set<NodeCapability>>;
  /** Runs one extraction off this process: the node passes its `ExtractionPool`'s `extract`, so parsing never runs on the worker's event loop. */
  extract(options: ExtractOptions): Promise<ExtractedDocument>;
}

/** What the extract step records on its job; the job itself moves on to a generate queue. */
export interface ExtractStepResult {
  document_sha256: string;
  queue: string;
  extract_ms: number;
}

/**
 * The `extract` processor: turns an uploaded file into an `ExtractedDocument` (stored in the blob
 * store) and hands the job on, under the same id, to `generate` — or to `generate-media` when the
 * input carries images or audio, which only projector nodes consume. With no such node alive,
 * media jobs fail at once instead of waiting forever.
 */
export function createExtractProcessor(deps: ExtractProcessorDeps): Processor<ExtractJobData, ExtractStepResult> {
  return async (data, ctx) => {
    const started = Date.now();
    if (!(await deps.blobs.has(data.file.sha256)))
      throw new GembatchError(
        'GB_ERR_FILE_NOT_FOUND',
        `the bytes of file ${data.file.id} are missing from the blob store`,
      );
    const capabilities = await deps.fleetCapabilities();
    const document = await deps.extract({
      path: await deps.blobs.path(data.file.sha256),
      ...(data.password ? { password: data.password } : {}),
      limits: deps.limits,
      scannedPages: deps.scannedPages,
      visionAvailable: capabilities.has('image'),
      putBlob: async (bytes) => (await deps.blobs.put(bytes)).sha256,
      signal: ctx.signal,
    });

    const task = TASKS[data.task];
    const mediaKinds = [...new Set(document.media.map((m) => m.kind))];
    for (const kind of document.kinds) {
      if (!task.accepts.includes(kind))
        throw new GembatchError(
          'GB_ERR_UNSUPPORTED_MEDIA',
          `the ${data.task} task does not take ${kind} input (the file is ${document.media_type})`,
        );
    }
    const missing = mediaKinds.filter((kind) => !capabilities.has(kind));
    if (missing.length > 0) {
      throw new GembatchError(
        'GB_ERR_NO_MEDIA_CAPABLE_NODE',
        `no live worker can read ${missing.join(' or ')} input (the file is ${document.media_type}); start a worker with GEMBATCH_MMPROJ`,
      );
    }
    if (document.text.trim().length === 0 && document.media.length === 0)
      throw new GembatchError('GB_ERR_NO_TEXT', `no text could be read from the ${document.media_type} file`);

    const { sha256 } = await putJson(deps.blobs, document);
    const queue = document.media.length > 0 ? QUEUE_NAMES.generateMedia : QUEUE_NAMES.generate;
    const extractMs = Date.now() - started;
    const next: GenerateJobData = {
      ...jobSpecOf(data),
      input: { type: 'document', sha256, file_id: data.file.id, media_type: document.media_type },
      extract_ms: extractMs,
    };
    await ctx.enqueue(queue, data.job_id, next, data.priority ? { priority: data.priority } : {});
    // The password opened the file; it must not stay in Redis for the retention period.
    if (data.password) await ctx.forget(['password']);
    ctx.log.info(
      {
        mediaType: document.media_type,
        pages: document.pages.length,
        media: document.media.length,
        chars: document.text.length,
        queue,
        ms: extractMs,
      },
      'extracted',
    );
    return { document_sha256: sha256, queue, extract_ms: extractMs };
  };
}
