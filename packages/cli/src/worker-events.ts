import type { ChildProcess } from 'node:child_process';
import { WorkerEvent } from '@gembatch/contracts';

/** The status line `gembatch up` prints for a worker event; `worker` names it when there are several. */
function describeWorkerEvent(event: WorkerEvent, worker?: string): string {
  const tag = worker ? `${worker}: ` : '';
  switch (event.type) {
    case 'model.download':
      return `${tag}downloading model: ${event.percent}%\n`;
    case 'model.decision':
      return `model      ${tag}${event.model} (${event.quant}): ${event.why}\n`;
    case 'worker.ready':
      return `worker     ${tag}ready: ${event.model} (${event.quant}), ${event.sequences} sequences\n`;
    case 'worker.failed':
      return `worker     ${tag}failed to start (${event.code}): ${event.message}\n`;
  }
}

/**
 * Shows a worker's typed events (its IPC channel, validated with `WorkerEvent`) on `status`.
 * Messages that are not worker events are ignored; the worker's log lines are never read.
 */
export function followWorkerEvents(child: ChildProcess, status: NodeJS.WritableStream, worker?: string): void {
  child.on('message', (message: unknown) => {
    const parsed = WorkerEvent.safeParse(message);
    if (parsed.success) status.write(describeWorkerEvent(parsed.data, worker));
  });
}
