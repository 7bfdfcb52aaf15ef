import type { WorkerEvent } from '@gembatch/contracts';

/** Where a worker sends its typed start events; resolves once the event is handed over (never rejects). */
export type WorkerEventSink = (event: WorkerEvent) => Promise<void>;

/**
 * Sends events over the IPC channel when the worker was started with one (`gembatch up` starts
 * its workers so), else undefined. The channel does not keep the worker alive, and a parent
 * that went away only means nobody listens.
 */
export function ipcWorkerEvents(): WorkerEventSink | undefined {
  if (!process.send) return undefined;
  process.channel?.unref();
  return (event) =>
    new Promise<void>((resolve) => {
      if (!process.connected || !process.send) return resolve();
      try {
        process.send(event, undefined, {}, () => resolve());
      } catch {
        // The channel closed between the check and the send.
        resolve();
      }
    });
}
