import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { ALL_QUEUES, type QueueName } from '@gembatch/contracts';

/** A job id that finished a stage (`completed` or `failed`) in one queue. */
export interface JobStageEvent {
  jobId: string;
  queue: QueueName;
  outcome: 'completed' | 'failed';
}

export interface JobEventStreamOptions {
  /** A connection whose options are copied: QueueEvents block on XREAD, so each queue opens (and closes) its own. */
  connection: Redis;
  /** BullMQ key prefix. */
  prefix: string;
  /** Called for every completed or failed stage. A throwing listener is ignored. */
  onEvent(event: JobStageEvent): void;
}

/**
 * Watches every gembatch queue's event stream for finished stages, so a consumer (the batch
 * feeder) learns that a job ended without polling each one. Events are hints, not a ledger: a
 * consumer that restarts may have missed some and must reconcile by reading job states.
 */
export class JobEventStream {
  readonly #events: QueueEvents[];
  #closing: Promise<void> | undefined;

  constructor(options: JobEventStreamOptions) {
    this.#events = ALL_QUEUES.map((queue) => {
      // Blocking reads must never give up on a command (BullMQ requires maxRetriesPerRequest: null).
      const events = new QueueEvents(queue, {
        connection: { ...options.connection.options, maxRetriesPerRequest: null },
        prefix: options.prefix,
        autorun: true,
      });
      const emit = (jobId: string, outcome: JobStageEvent['outcome']) => {
        try {
          options.onEvent({ jobId, queue, outcome });
        } catch {
          // A listener's bug must not stop the stream.
        }
      };
      events.on('completed', ({ jobId }) => emit(jobId, 'completed'));
      events.on('failed', ({ jobId }) => emit(jobId, 'failed'));
      // Connection errors are retried by ioredis; without a listener they would be thrown.
      events.on('error', () => undefined);
      return events;
    });
  }

  /** Resolves once every queue's stream is being read. */
  async waitUntilReady(): Promise<void> {
    await Promise.all(this.#events.map((events) => events.waitUntilReady()));
  }

  /** Stops reading and closes the connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#events.map((events) => events.close())).then(() => undefined);
    return this.#closing;
  }
}
