/**
 * Entry of one extraction process (forked by `ExtractionProcess`): runs `extractFile` for one job
 * at a time, away from the worker's event loop and memory. Derived media go back to the parent
 * as `put` messages (the parent owns the blob store). When the parent goes away (its IPC channel
 * closes, e.g. kill -9 of the worker), this process kills its own process group, so no pdftotext,
 * tesseract or ffmpeg it started outlives it.
 */
import { GembatchError, toGembatchError } from '@gembatch/contracts';
import { extractFile } from '../extract-file.ts';
import type { ChildToParent, ParentToChild, SerializedError } from './pool-protocol.ts';

const send = (message: ChildToParent) => {
  process.send?.(message);
};

// Why 8 Mi characters: below it a forced collection costs more than the memory it saves.
const LARGE_RESULT_CHARS = 8 * 1024 * 1024;

const pendingPuts = new Map<number, { resolve(sha256: string): void; reject(error: Error): void }>();
let nextSeq = 1;

function putBlob(job: number, bytes: Buffer, mime: string): Promise<string> {
  const seq = nextSeq++;
  return new Promise<string>((resolve, reject) => {
    pendingPuts.set(seq, { resolve, reject });
    send({ type: 'put', job, seq, bytes, mime });
  });
}

function serialize(error: unknown): SerializedError {
  const gembatch = toGembatchError(error);
  return { code: gembatch.code, message: gembatch.message, retryable: gembatch.retryable, ...(gembatch.details ? { details: gembatch.details } : {}) };
}

process.on('message', (message: ParentToChild) => {
  switch (message.type) {
    case 'extract':
      extractFile({ ...message.options, putBlob: (bytes, mime) => putBlob(message.job, bytes, mime) }).then(
        (document) => {
          // The per-page strings a large document was assembled from are garbage now; collecting them
          // before the result is serialized (another copy) keeps the process's peak near one document.
          if (document.text.length > LARGE_RESULT_CHARS) (globalThis as { gc?: () => void }).gc?.();
          send({ type: 'done', job: message.job, document });
        },
        (error: unknown) => send({ type: 'failed', job: message.job, error: serialize(error) }),
      );
      return;
    case 'put-result':
    case 'put-failed': {
      const pending = pendingPuts.get(message.seq);
      if (!pending) return;
      pendingPuts.delete(message.seq);
      if (message.type === 'put-result') pending.resolve(message.sha256);
      else pending.reject(new GembatchError(message.error.code as GembatchError['code'], message.error.message, message.error.retryable === undefined ? {} : { retryable: message.error.retryable }));
      return;
    }
  }
});

process.on('disconnect', () => {
  // Negative pid: the whole process group this process leads (it was started detached).
  try {
    process.kill(-process.pid, 'SIGKILL');
  } catch {
    process.exit(1);
  }
});

send({ type: 'ready' });
