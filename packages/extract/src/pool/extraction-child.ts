/**
 * Entry of one extraction process (forked by `ExtractionProcess`): runs `extractFile` for one job
 * at a time, away from the worker's event loop and memory. Derived media go back to the parent
 * as `put` messages (the parent owns the blob store). When the parent goes away (its IPC channel
 * closes, e.g. kill -9 of the worker), this process kills its own process group, so no pdftotext,
 * tesseract or ffmpeg it started outlives it.
 */
import { deserializeError, serializeError, type ExtractedDocument } from '@gembatch/contracts';
import { extractFile } from '../extract-file.ts';
import type { ChildToParent, ParentToChild } from './pool-protocol.ts';

const send = (message: ChildToParent) => {
  process.send?.(message);
};

// Why 8 Mi characters: below it a forced collection costs more than the memory it saves.
const LARGE_RESULT_CHARS = 8 * 1024 * 1024;
// Why 4 Mi characters: IPC serializes a message into a buffer and copies it once more to frame it;
// in 4 Mi slices a 75 MiB text costs ~10 MiB of copies instead of ~200 MiB.
const TEXT_CHUNK_CHARS = 4 * 1024 * 1024;

/**
 * Sends a result: its text first, in slices, then the rest. The per-page strings a large document
 * was assembled from are garbage by now; collecting them first keeps the peak near one document.
 */
function sendResult(job: number, document: ExtractedDocument): void {
  if (document.text.length > LARGE_RESULT_CHARS) (globalThis as { gc?: () => void }).gc?.();
  for (let offset = 0; offset < document.text.length; offset += TEXT_CHUNK_CHARS)
    send({ type: 'text', job, chunk: document.text.slice(offset, offset + TEXT_CHUNK_CHARS) });
  send({ type: 'done', job, document: { ...document, text: '' } });
}

const pendingPuts = new Map<number, { resolve(sha256: string): void; reject(error: Error): void }>();
let nextSeq = 1;

function putBlob(job: number, bytes: Buffer, mime: string): Promise<string> {
  const seq = nextSeq++;
  return new Promise<string>((resolve, reject) => {
    pendingPuts.set(seq, { resolve, reject });
    send({ type: 'put', job, seq, bytes, mime });
  });
}

process.on('message', (message: ParentToChild) => {
  switch (message.type) {
    case 'extract':
      extractFile({ ...message.options, putBlob: (bytes, mime) => putBlob(message.job, bytes, mime) }).then(
        (document) => sendResult(message.job, document),
        (error: unknown) => send({ type: 'failed', job: message.job, error: serializeError(error) }),
      );
      return;
    case 'put-result':
    case 'put-failed': {
      const pending = pendingPuts.get(message.seq);
      if (!pending) return;
      pendingPuts.delete(message.seq);
      if (message.type === 'put-result') pending.resolve(message.sha256);
      else pending.reject(deserializeError(message.error));
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
