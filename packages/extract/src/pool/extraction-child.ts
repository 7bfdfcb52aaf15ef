/**
 * Entry of one extraction process (forked by `ExtractionProcess`): runs `extractFile` for one job
 * at a time, away from the worker's event loop and memory. Derived media go back to the parent
 * as `put` messages (the parent owns the blob store). When the parent goes away (its IPC channel
 * closes, e.g. kill -9 of the worker), this process kills its own process group, so no pdftotext,
 * tesseract or ffmpeg it started outlives it.
 */
import { deserializeError, serializeError } from '@gembatch/contracts';
import { extractFileInParts } from '../extract-file.ts';
import { textRuns, type PartedDocument } from '../parted-document.ts';
import type { ChildToParent, ParentToChild } from './pool-protocol.ts';

const send = (message: ChildToParent) => {
  process.send?.(message);
};

/** Sends a message and resolves once it is written to the channel (the parent has taken it). */
const sendAndWait = (message: ChildToParent) =>
  new Promise<void>((resolve, reject) => {
    if (!process.send) {
      resolve();
      return;
    }
    process.send(message, undefined, undefined, (error: Error | null) => (error ? reject(error) : resolve()));
  });

// Why 4 Mi characters: IPC serializes a message into a buffer and copies it once more to frame it;
// in 4 Mi-character runs a 75 MiB text costs ~10 MiB of copies instead of ~200 MiB.
const TEXT_RUN_CHARS = 4 * 1024 * 1024;

/**
 * Sends a result: its text first, in runs of its parts (a PDF's pages) that are never joined here,
 * each sent once the previous one was written, then the rest. At 20,000 pages, joining the pages
 * held the text twice (+75 MiB), sending without waiting queued every serialized slice at once
 * (+82 MiB), and joined 4 Mi-character slices stayed on the heap as garbage until the send ended (+54 MiB).
 */
async function sendResult(job: number, parted: PartedDocument): Promise<void> {
  for (const pieces of textRuns(parted, TEXT_RUN_CHARS)) await sendAndWait({ type: 'text', job, pieces });
  send({ type: 'done', job, document: parted.document });
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
      extractFileInParts({ ...message.options, putBlob: (bytes, mime) => putBlob(message.job, bytes, mime) })
        .then(
          (parted) => sendResult(message.job, parted),
          (error: unknown) => send({ type: 'failed', job: message.job, error: serializeError(error) }),
        )
        // A send fails only when the parent is gone; 'disconnect' below then ends this process.
        .catch(() => undefined);
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
