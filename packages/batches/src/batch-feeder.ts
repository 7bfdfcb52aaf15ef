import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Redis } from 'ioredis';
import pMap from 'p-map';
import {
  decodeFailedReason,
  GembatchError,
  GenerateJobResult,
  QUEUE_NAMES,
  redisKeys,
  toGembatchError,
  type FileRecord,
  type QueueName,
} from '@gembatch/contracts';
import {
  cancelJob,
  JobAdmission,
  JobEventStream,
  parseStoredJson,
  type BulkSubmission,
  type JobProducer,
} from '@gembatch/queue';
import type { BlobStore } from '@gembatch/storage';
import type { Logger } from '@gembatch/telemetry';
import type { BatchObject } from './batch-schemas.ts';
import { BatchStore, toBatchObject, writeIfBatchExists, type BatchRecord, type BatchWrite } from './batch-store.ts';
import { deleteBatchKeys } from './batch-purge.ts';
import { readInputLines } from './input-lines.ts';
import { decodeOutcome, encodeInlineError, encodeOutcome, type RequestOutcome } from './request-outcomes.ts';
import {
  parseInputLine,
  planRequest,
  prepareJob,
  type BatchFiles,
  type PreparedJob,
  type RequestCheck,
} from './request-mapping.ts';
import { streamResults } from './result-stream.ts';
import { validateInput } from './validate-input.ts';
import { batchReferrer, DEFAULT_MAX_BATCH_REQUESTS } from './batch-service.ts';

/**
 * Why 256: several times the sequences of a large GPU node (64), so the queue never runs dry between ticks, yet small
 * enough that a new batch's requests wait behind at most this many.
 */
export const DEFAULT_BATCH_WINDOW = 256;
/** Seven days, as jobs: how long finished batches keep their per-request data. */
const DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600;
/** How often the feeder looks at every active batch even without events (expiry, missed events). */
const TICK_MS = 1_000;
/** How often every in-flight job's state is read again (events are hints; this is the ledger). */
const RECONCILE_MS = 5_000;
/** Why 15 s: several ticks; a feeder that stalls longer than this is replaced by another API process. */
const LOCK_TTL_MS = 15_000;
/**
 * Most requests fed to one batch per tick. Why 64: a chunk's jobs reach the queue together, after
 * every one of them has stored its inline text (a file write and two fsyncs each), so a new batch's
 * first job waits for its whole first chunk; at 500 (the earlier value) a 384-line batch's first job
 * started 0.7-0.8 s after the batch was created on the 2-core build machine, with the engine idle.
 * A chunk that leaves room and lines behind runs the next tick at once, so small chunks cost no
 * waiting, only a few reads of the batch records per 64 requests.
 */
const MAX_CHUNK = 64;
/** Inline texts of one chunk stored at once (each waits on its own fsyncs, which the disk serves together). */
const PREPARE_CONCURRENCY = 16;
/** Job states read at once while reconciling. */
const RECONCILE_CONCURRENCY = 64;
/** Turn ids of tenants' plain jobs in the slot rotation (batch ids start with `batch_`, so they never collide). */
const PLAIN_JOBS_TURN = 'plain-jobs:';

export interface BatchFeederOptions {
  /** Request/response connection; the event stream opens its own. The caller closes it. */
  redis: Redis;
  prefix: string;
  /** Adds jobs (`submitBulk`) and owns the queues whose states are read. */
  producer: JobProducer;
  blobStore: BlobStore;
  files: BatchFiles;
  logger: Logger;
  /** Requests of all batches and plain jobs together in the queues at once (`GEMBATCH_BATCH_WINDOW`). Defaults to `256`. */
  window?: number;
  /** Most requests per batch. Defaults to `200000`. */
  maxRequests?: number;
  /** How long finished batches keep their per-request data (seconds). Defaults to 7 days. */
  retentionSeconds?: number;
  /**
   * Called when a batch reaches a final status (`completed`, `failed`, `cancelled`, `expired`), with
   * the batch as it is about to be stored, just before the status is written (a finalize re-run after
   * a crash calls it again): the server enqueues its webhook here, whose delivery waits until the
   * status is stored. A throw is logged, never fatal.
   */
  onEnded?: (batch: BatchObject) => Promise<void>;
  /** The API's per-request caps, applied to every line as `POST /v1/jobs` applies them. Defaults to none. */
  checkRequest?: RequestCheck;
}

/** Where one request of one batch is: the job it runs as. */
export interface InflightRequest {
  batchId: string;
  index: number;
}

/**
 * Drives every active batch: validates new ones, feeds their requests into the ordinary job
 * queues through a bounded window shared round-robin by tenants and then by each tenant's
 * batches, records each request's outcome as its job ends, and finalizes (output and error files
 * in input order). One API process holds the feeder lock at a time; all state is in Redis, so a
 * restarted or replacing process continues where the last one stopped.
 */
export class BatchFeeder {
  readonly #options: BatchFeederOptions;
  readonly #store: BatchStore;
  readonly #log: Logger;
  readonly #window: number;
  readonly #token = randomUUID();
  /** job id → the requests it serves (identical requests share a job). Mirrors the in-flight hashes. */
  #byJob = new Map<string, InflightRequest[]>();
  /** batch id → requests in flight. */
  #inflightCount = new Map<string, number>();
  #dirty = new Set<string>();
  /** Batches being wound down because their window passed: their withdrawn requests count as expired, not cancelled. */
  #expiring = new Set<string>();
  #loaded = false;
  #lastReconcile = 0;
  /** Tenants and batches in the order they get the next free slots (rotated after each turn). */
  readonly #turns: SlotTurns = { tenants: [], batches: new Map() };
  readonly #tasks = new Map<string, Promise<void>>();
  /** Plain jobs' fair share: their pending lists and the admitted set, in Redis. */
  readonly #admission: JobAdmission;
  /** Plain jobs holding window slots, as read from the admitted set at the start of the tick. */
  #admitted = new Set<string>();
  /** Plain jobs whose stage ended since the last tick (checked against the admitted set). */
  #admittedDirty = new Set<string>();
  /** Whether some tenant's plain jobs waited for a slot at the last tick (then every ended job is worth a tick). */
  #pendingWaiting = false;
  /** The last tick fed a full chunk and left slots free: the next one runs without waiting for the timer. */
  #moreToFeed = false;
  #events: JobEventStream | undefined;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: BatchFeederOptions) {
    this.#options = options;
    this.#store = new BatchStore(options.redis, options.prefix, options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS);
    this.#log = options.logger.child({ component: 'batch-feeder' });
    this.#window = options.window ?? DEFAULT_BATCH_WINDOW;
    this.#admission = new JobAdmission({ producer: options.producer, window: this.#window });
  }

  /** Starts the loop (and the event stream). Resolves once events are being read. */
  async start(): Promise<void> {
    if (this.#loop) return;
    this.#events = new JobEventStream({
      connection: this.#options.redis,
      prefix: this.#options.prefix,
      onEvent: ({ jobId }) => {
        if (this.#byJob.has(jobId)) {
          this.#dirty.add(jobId);
          this.poke();
          return;
        }
        // A plain job (or another stage's id): its slot is freed if it is in the admitted set.
        this.#admittedDirty.add(jobId);
        if (this.#pendingWaiting || this.#admitted.has(jobId)) this.poke();
      },
    });
    await this.#events.waitUntilReady();
    this.#loop = this.#run();
  }

  /** Asks for a tick now (a batch was created or cancelled, a job ended). */
  poke(): void {
    this.#wake?.();
  }

  /** Stops after the current tick and the running validations/finalizations; releases the lock. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.poke();
      await this.#loop;
      await Promise.allSettled([...this.#tasks.values()]);
      await this.#events?.close();
      await this.#releaseLock().catch(() => undefined);
    })();
    return this.#closed;
  }

  async #run(): Promise<void> {
    while (!this.#closing) {
      try {
        await this.#tick();
      } catch (error) {
        this.#log.error({ err: describeError(error) }, 'batch feeder tick failed');
      }
      if (this.#closing) break;
      await new Promise<void>((resolveWait) => {
        const timer = setTimeout(done, TICK_MS);
        function done() {
          clearTimeout(timer);
          resolveWait();
        }
        this.#wake = done;
        // Work that arrived during the tick must not wait for the timer.
        if (this.#dirty.size > 0 || this.#moreToFeed || (this.#pendingWaiting && this.#admittedDirty.size > 0)) done();
      });
      this.#wake = undefined;
    }
  }

  async #holdLock(): Promise<boolean> {
    const key = redisKeys.batchFeederLock(this.#options.prefix);
    const result = (await this.#options.redis.eval(LOCK_SCRIPT, 1, key, this.#token, String(LOCK_TTL_MS))) as number;
    return result === 1;
  }

  async #releaseLock(): Promise<void> {
    await this.#options.redis.eval(UNLOCK_SCRIPT, 1, redisKeys.batchFeederLock(this.#options.prefix), this.#token);
  }

  async #tick(): Promise<void> {
    if (!(await this.#holdLock())) {
      // Another process feeds; forget what this one knew, it will be reloaded if the lock comes back.
      this.#loaded = false;
      this.#byJob.clear();
      this.#inflightCount.clear();
      this.#admitted.clear();
      this.#admittedDirty.clear();
      return;
    }
    const ids = await this.#store.activeIds();
    const records = (await Promise.all(ids.map((id) => this.#store.read(id)))).filter(
      (r): r is BatchRecord => r !== undefined,
    );
    if (!this.#loaded) await this.#load(records);

    const now = Date.now();
    const admitted = await this.#admission.admittedIds();
    this.#admitted = new Set(admitted);
    if (now - this.#lastReconcile >= RECONCILE_MS) {
      this.#lastReconcile = now;
      for (const jobId of this.#byJob.keys()) this.#dirty.add(jobId);
      // Admissions a crashed feeder left half done go into their queues first, then every slot is checked.
      const resumed = await this.#admission.resumeAdmissions(admitted);
      if (resumed > 0) this.#log.info({ jobs: resumed }, 'plain job admissions resumed');
      for (const jobId of admitted) this.#admittedDirty.add(jobId);
    }
    await this.#resolveDirty();
    await this.#resolveAdmitted();

    for (const record of records) {
      if (record.status === 'validating') this.#runTask(record.id, () => this.#validate(record));
      else if (record.status === 'in_progress' || record.status === 'cancelling')
        await this.#windDownIfEnding(record, now);
      else if (record.status === 'finalizing') this.#runTask(record.id, () => this.#finalize(record.id));
      else await this.#retire(record);
    }

    const feedable = (
      await Promise.all(records.filter((r) => r.status === 'in_progress').map((r) => this.#store.read(r.id)))
    ).filter(
      (r): r is BatchRecord =>
        r !== undefined && r.status === 'in_progress' && r.ending === null && r.cursor_line < r.total,
    );
    const pending = await this.#admission.pendingCounts();
    this.#pendingWaiting = pending.size > 0;
    this.#moreToFeed = false;
    for (const [turnId, slots] of this.#allocate(feedable, pending)) {
      // A full chunk fed: that turn has more, and the next tick gives it (or another) the room left.
      const full = () => {
        if (slots >= MAX_CHUNK) this.#moreToFeed = true;
      };
      if (turnId.startsWith(PLAIN_JOBS_TURN)) {
        const tenant = turnId.slice(PLAIN_JOBS_TURN.length);
        await this.#admission
          .admitPending(tenant, slots)
          .then((ids) => {
            ids.forEach((id) => this.#admitted.add(id));
            full();
          })
          .catch((error: unknown) => this.#log.error({ err: describeError(error) }, 'admitting plain jobs failed'));
        continue;
      }
      const record = feedable.find((r) => r.id === turnId) as BatchRecord;
      await this.#feed(record, slots)
        .then(full)
        .catch((error: unknown) =>
          this.#log.error({ err: describeError(error), batchId: turnId }, 'feeding a batch failed'),
        );
    }
    // Submissions admit a plain job at once only while batches and admitted jobs leave room.
    await this.#admission.reportBatchInflight(this.#batchInflight(), LOCK_TTL_MS);

    for (const id of ids) {
      const record = await this.#store.read(id);
      if (!record || (record.status !== 'in_progress' && record.status !== 'cancelling')) continue;
      const done = record.ending !== null || record.status === 'cancelling' || record.cursor_line >= record.total;
      if (done && (this.#inflightCount.get(id) ?? 0) === 0) {
        if (
          await this.#store.transition(id, ['in_progress', 'cancelling'], 'finalizing', {
            finalizing_at: Date.now(),
            ending: record.status === 'cancelling' ? 'cancelled' : record.ending,
          })
        ) {
          this.#runTask(id, () => this.#finalize(id));
        }
      }
    }
  }

  /** Ends the feeder's work on a batch: off the active set, and its hold on the input's bytes released. */
  async #retire(record: BatchRecord): Promise<void> {
    await this.#store.retire(record.id);
    await this.#options.files.references.release(record.input_sha256, batchReferrer(record.id));
    this.#expiring.delete(record.id);
  }

  /** Rebuilds the in-memory mirror of every batch's in-flight hash (after a start or a lock change) and reconciles it. */
  async #load(records: readonly BatchRecord[]): Promise<void> {
    this.#byJob.clear();
    this.#inflightCount.clear();
    for (const record of records) {
      const inflight = await this.#options.redis.hgetall(redisKeys.batchInflight(this.#options.prefix, record.id));
      for (const [index, jobId] of Object.entries(inflight))
        this.#track(jobId, { batchId: record.id, index: Number(index) });
    }
    for (const jobId of this.#byJob.keys()) this.#dirty.add(jobId);
    this.#loaded = true;
    this.#log.info({ batches: records.length, inflight: this.#byJob.size }, 'batch feeder took over');
  }

  #track(jobId: string, request: InflightRequest): void {
    const list = this.#byJob.get(jobId) ?? [];
    list.push(request);
    this.#byJob.set(jobId, list);
    this.#inflightCount.set(request.batchId, (this.#inflightCount.get(request.batchId) ?? 0) + 1);
  }

  #runTask(batchId: string, task: () => Promise<void>): void {
    if (this.#tasks.has(batchId) || this.#closing) return;
    const running = task()
      .catch((error: unknown) => this.#log.error({ err: describeError(error), batchId }, 'batch task failed'))
      .finally(() => {
        this.#tasks.delete(batchId);
        this.poke();
      });
    this.#tasks.set(batchId, running);
  }

  async #validate(record: BatchRecord): Promise<void> {
    const started = Date.now();
    const path = await this.#options.blobStore.path(record.input_sha256);
    const result = await validateInput({
      redis: this.#options.redis,
      prefix: this.#options.prefix,
      batchId: record.id,
      endpoint: record.endpoint,
      path,
      maxRequests: this.#options.maxRequests ?? DEFAULT_MAX_BATCH_REQUESTS,
      ...(this.#options.checkRequest ? { checkRequest: this.#options.checkRequest } : {}),
    });
    const now = Date.now();
    if (result.fatal.length > 0) {
      await this.#ended(record.id, { status: 'failed', failed_at: now, errors: result.fatal, total: 0 });
      await this.#store.transition(record.id, ['validating'], 'failed', {
        failed_at: now,
        errors: result.fatal,
        total: 0,
      });
      await this.#retire(record);
      this.#log.info({ batchId: record.id, errors: result.fatal.length, ms: now - started }, 'batch input invalid');
      return;
    }
    if (!(await writeIfBatchExists(this.#options.redis, this.#options.prefix, record.id, []))) {
      // Purged while validating: what the validation wrote goes too.
      await deleteBatchKeys(this.#options.redis, this.#options.prefix, record.id);
      return;
    }
    const moved = await this.#store.transition(record.id, ['validating'], 'in_progress', {
      in_progress_at: now,
      total: result.total,
      failed: result.requestErrors,
      completed: 0,
    });
    // Cancelled while validating: it still needs its counts to finalize.
    if (!moved) await this.#store.update(record.id, { total: result.total, failed: result.requestErrors });
    this.#log.info(
      { batchId: record.id, requests: result.total, badRequests: result.requestErrors, ms: now - started },
      'batch validated',
    );
  }

  /** A cancelled or expired batch: mark why, then cancel whatever it has in the queues. */
  async #windDownIfEnding(record: BatchRecord, now: number): Promise<void> {
    let ending = record.ending;
    if (ending === null && record.status === 'cancelling') ending = 'cancelled';
    if (ending === null && now >= record.expires_at) ending = 'expired';
    if (ending === null) return;
    if (ending === 'expired') this.#expiring.add(record.id);
    if (record.ending === null) {
      await this.#store.update(record.id, { ending });
      this.#log.info({ batchId: record.id, ending }, 'batch winding down');
    }
    const jobs = [...this.#byJob]
      .filter(([, requests]) => requests.some((r) => r.batchId === record.id))
      .map(([jobId]) => jobId);
    await Promise.all(
      jobs.map(async (jobId) => {
        await cancelJob(this.#options.producer, jobId, record.tenant).catch((error: unknown) => {
          // Finished a moment ago (conflict) or already gone: its outcome is read below either way.
          if (
            !(error instanceof GembatchError) ||
            (error.code !== 'GB_ERR_CONFLICT' && error.code !== 'GB_ERR_NOT_FOUND')
          )
            throw error;
        });
        this.#dirty.add(jobId);
      }),
    );
  }

  /**
   * Free slots of the window (less batch requests and admitted plain jobs in the queues), shared out
   * by `allocateSlots` (whose turn order carries over to the next tick). A tenant's pending plain
   * jobs take one turn among its batches.
   */
  #allocate(feedable: readonly BatchRecord[], pendingPlain: ReadonlyMap<string, number>): Map<string, number> {
    const free = this.#window - this.#batchInflight() - this.#admitted.size;
    return allocateSlots(
      free,
      [
        ...feedable.map((r) => ({ id: r.id, tenant: r.tenant, wants: Math.min(MAX_CHUNK, r.total - r.cursor_line) })),
        ...[...pendingPlain].map(([tenant, count]) => ({
          id: `${PLAIN_JOBS_TURN}${tenant}`,
          tenant,
          wants: Math.min(MAX_CHUNK, count),
        })),
      ],
      this.#turns,
    );
  }

  #batchInflight(): number {
    return [...this.#inflightCount.values()].reduce((a, b) => a + b, 0);
  }

  /** Frees the slots of admitted plain jobs that ended (completed, failed for good, cancelled, deleted). */
  async #resolveAdmitted(): Promise<void> {
    const jobIds = [...this.#admittedDirty].filter((id) => this.#admitted.has(id));
    this.#admittedDirty.clear();
    const { producer, redis, prefix } = this.#options;
    for (let i = 0; i < jobIds.length; i += RECONCILE_CONCURRENCY) {
      const slice = jobIds.slice(i, i + RECONCILE_CONCURRENCY);
      const outcomes = await readJobOutcomes(producer, redis, prefix, slice);
      const ended = slice.filter((_, index) => outcomes[index] !== undefined);
      await this.#admission.release(ended);
      for (const jobId of ended) this.#admitted.delete(jobId);
    }
  }

  /**
   * Hands up to `slots` requests of a batch to the queues, from its cursor: each line becomes a job
   * (identical requests share one; a request whose job already ended takes that outcome at once; a
   * request that cannot become a job is recorded as an error). Jobs are added with `addBulk`
   * before the cursor moves, and their ids are stable, so a crash in between re-adds nothing twice.
   */
  async #feed(record: BatchRecord, slots: number): Promise<void> {
    const { redis, prefix, blobStore, files } = this.#options;
    const path = await blobStore.path(record.input_sha256);
    const context = {
      tenant: record.tenant,
      batchId: record.id,
      blobStore,
      files,
      retentionSeconds: this.#options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS,
    };
    const jobs: Array<{ index: number; prepared: PreparedJob }> = [];
    const inlineErrors: Array<[string, string]> = [];
    let cursor = { line: record.cursor_line, byte: record.cursor_byte, lineNumber: record.cursor_line_number };
    const requestsKey = redisKeys.batchRequests(prefix, record.id);
    let recorded = new Set<number>();
    let recordedUntil = 0;
    const lines: Array<{ index: number; lineNumber: number; text: string }> = [];
    for await (const line of readInputLines(path, {
      startByte: record.cursor_byte,
      startIndex: record.cursor_line,
      startLineNumber: record.cursor_line_number,
    })) {
      if (lines.length >= slots || line.index >= record.total) break;
      cursor = { line: line.index + 1, byte: line.nextByte, lineNumber: line.lineNumber + 1 };
      // Recorded at validation (a bad body): already counted as failed. Looked up for the next `slots` lines at once.
      if (line.index >= recordedUntil) {
        const indexes = Array.from({ length: Math.min(slots, record.total - line.index) }, (_, i) => line.index + i);
        const values = await redis.hmget(requestsKey, ...indexes.map(String));
        recorded = new Set(indexes.filter((_, i) => values[i] !== null));
        recordedUntil = line.index + indexes.length;
      }
      if (!recorded.has(line.index)) lines.push({ index: line.index, lineNumber: line.lineNumber, text: line.text });
    }
    // Each line's inline text is stored (and fsynced) before its job exists; several at a time.
    const prepared = await pMap(
      lines,
      async (line): Promise<{ index: number; prepared: PreparedJob } | { index: number; error: string }> => {
        try {
          const request = parseInputLine(line.text);
          const job = await prepareJob(context, planRequest(record.endpoint, request.body, this.#options.checkRequest));
          return { index: line.index, prepared: job };
        } catch (error) {
          const problem = toGembatchError(error);
          return {
            index: line.index,
            error: encodeInlineError(problem.code, `line ${line.lineNumber}: ${problem.message}`),
          };
        }
      },
      { concurrency: PREPARE_CONCURRENCY },
    );
    for (const outcome of prepared) {
      if ('prepared' in outcome) jobs.push({ index: outcome.index, prepared: outcome.prepared });
      else inlineErrors.push([String(outcome.index), outcome.error]);
    }
    // Identical requests whose job already ended (earlier in this batch) take its outcome now.
    const known =
      jobs.length > 0
        ? await redis.hmget(redisKeys.batchOutcomes(prefix, record.id), ...jobs.map((j) => j.prepared.data.job_id))
        : [];
    const fresh = jobs.filter((_, i) => known[i] === null);
    const reused = jobs.filter((_, i) => known[i] !== null);
    // Purged while this chunk was read: add no job for it.
    if (!(await writeIfBatchExists(redis, prefix, record.id, []))) return;
    for (const job of fresh) this.#track(job.prepared.data.job_id, { batchId: record.id, index: job.index });
    const bulk: BulkSubmission[] = fresh.map(({ prepared }) => ({
      data: prepared.data,
      queue: prepared.queue,
      ...(prepared.priority !== undefined ? { priority: prepared.priority } : {}),
    }));
    // Duplicates within this chunk share one job: add it once.
    const seen = new Set<string>();
    await this.#options.producer.submitBulk(
      bulk.filter((b) => !seen.has(b.data.job_id) && seen.add(b.data.job_id) !== undefined),
    );

    const batchKey = redisKeys.batch(prefix, record.id);
    const writes: BatchWrite[] = [];
    if (jobs.length > 0)
      writes.push(['HSET', requestsKey, ...jobs.flatMap((j) => [String(j.index), j.prepared.data.job_id])]);
    if (fresh.length > 0)
      writes.push([
        'HSET',
        redisKeys.batchInflight(prefix, record.id),
        ...fresh.flatMap((j) => [String(j.index), j.prepared.data.job_id]),
      ]);
    if (inlineErrors.length > 0) writes.push(['HSET', requestsKey, ...inlineErrors.flat()]);
    const reusedOk = known.filter((raw) => raw !== null && decodeOutcome(raw).ok).length;
    const failedNow = inlineErrors.length + (reused.length - reusedOk);
    if (reusedOk > 0) writes.push(['HINCRBY', batchKey, 'completed', String(reusedOk)]);
    if (failedNow > 0) writes.push(['HINCRBY', batchKey, 'failed', String(failedNow)]);
    writes.push([
      'HSET',
      batchKey,
      'cursor_line',
      String(cursor.line),
      'cursor_byte',
      String(cursor.byte),
      'cursor_line_number',
      String(cursor.lineNumber),
    ]);
    if (!(await writeIfBatchExists(redis, prefix, record.id, writes))) {
      // Purged between the check above and now: take back what was just added (a job a worker already holds runs out).
      await Promise.allSettled(
        fresh.map(({ prepared }) => this.#options.producer.queues[prepared.queue].remove(prepared.data.job_id)),
      );
      return;
    }
    this.#log.debug(
      {
        batchId: record.id,
        fed: fresh.length,
        reused: reused.length,
        errors: inlineErrors.length,
        cursor: cursor.line,
      },
      'batch fed',
    );
  }

  /** Reads the outcome of every job marked dirty and records the finished ones for all their requests. */
  async #resolveDirty(): Promise<void> {
    const jobIds = [...this.#dirty].filter((id) => this.#byJob.has(id));
    this.#dirty.clear();
    const { producer, redis, prefix } = this.#options;
    for (let i = 0; i < jobIds.length; i += RECONCILE_CONCURRENCY) {
      const slice = jobIds.slice(i, i + RECONCILE_CONCURRENCY);
      const outcomes = await readJobOutcomes(producer, redis, prefix, slice);
      await this.#record(
        slice.flatMap((jobId, k) => {
          const outcome = outcomes[k];
          // Forgotten meanwhile (another process took the lock over): nothing to record here.
          return outcome && this.#byJob.has(jobId) ? [{ jobId, outcome }] : [];
        }),
      );
    }
  }

  /**
   * Records ended jobs' outcomes for all the requests they serve, in one guarded write per batch
   * (outcomes, in-flight entries and counters of many jobs at once), then drops what was written
   * from the mirror.
   */
  async #record(ended: ReadonlyArray<{ jobId: string; outcome: RequestOutcome }>): Promise<void> {
    const { redis, prefix } = this.#options;
    const entries = ended.map(({ jobId, outcome }) => {
      const requests = this.#byJob.get(jobId) ?? [];
      return { jobId, requests, outcome: this.#expiredIfEnding(outcome, requests) };
    });
    const written = await Promise.allSettled(
      [...outcomeWrites(prefix, entries)].map(async ([batchId, writes]) => {
        // A purged batch: nothing is written, the request is simply forgotten.
        await writeIfBatchExists(redis, prefix, batchId, writes);
        return batchId;
      }),
    );
    const recorded = new Set(written.flatMap((w) => (w.status === 'fulfilled' ? [w.value] : [])));
    forgetRecorded(
      { byJob: this.#byJob, inflightCount: this.#inflightCount },
      ended.map((e) => e.jobId),
      recorded,
    );
    const failure = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failure) throw failure.reason;
  }

  /** A cancel that came from the batch's completion window passing (every request's batch is expiring) is an expiry. */
  #expiredIfEnding(read: RequestOutcome, requests: readonly InflightRequest[]): RequestOutcome {
    if (read.ok || read.code !== 'GB_ERR_CANCELLED' || !requests.every((r) => this.#expiring.has(r.batchId)))
      return read;
    return {
      ok: false,
      code: 'GB_ERR_BATCH_EXPIRED',
      message: 'the batch reached the end of its completion window before this request finished',
      at: read.at,
    };
  }

  /** Tells `onEnded` (the webhook) about a batch about to be stored with these final fields. */
  async #ended(batchId: string, final: Partial<BatchRecord>): Promise<void> {
    if (!this.#options.onEnded) return;
    try {
      const record = await this.#store.read(batchId);
      if (record) await this.#options.onEnded(toBatchObject({ ...record, ...final }));
    } catch (error) {
      this.#log.error({ err: error, batchId }, 'batch end notification failed');
    }
  }

  /**
   * Writes the output and error files by streaming the input once (results in input order), then
   * ends the batch: `completed`, `cancelled` (unrun requests are left out) or `expired` (unrun
   * requests go to the error file as `GB_ERR_BATCH_EXPIRED`). Counts are recounted from the files,
   * so they always match them. Safe to run again after a crash (it starts over).
   */
  async #finalize(batchId: string): Promise<void> {
    const record = await this.#store.read(batchId);
    if (!record || record.status !== 'finalizing') return;
    const started = Date.now();
    const { redis, prefix, blobStore, files } = this.#options;
    const ending = record.ending ?? 'completed';
    const unfinished =
      ending === 'expired'
        ? ({
            ok: false,
            code: 'GB_ERR_BATCH_EXPIRED',
            message: 'the batch reached the end of its completion window before this request ran',
            at: started,
          } as const)
        : ('skip' as const);
    // A file is opened at its first line: as OpenAI, a batch with no successes (or no errors) has no such file.
    const sinks = new Map<'output' | 'error', { stream: PassThrough; stored: Promise<FileRecord> }>();
    const sink = (kind: 'output' | 'error') => {
      let open = sinks.get(kind);
      if (!open) {
        const stream = new PassThrough();
        const stored = files.create(stream, {
          tenant: record.tenant,
          filename: `${record.id}_${kind}.jsonl`,
          purpose: 'batch_output',
        });
        // Observed here so that a failure never goes unhandled before it is awaited below.
        stored.catch(() => undefined);
        open = { stream, stored };
        sinks.set(kind, open);
      }
      return open.stream;
    };
    let completed = 0;
    let failed = 0;
    try {
      for await (const entry of streamResults({ redis, prefix, blobStore }, record, { unfinished })) {
        const stream = sink(entry.kind);
        if (entry.kind === 'output') completed += 1;
        else failed += 1;
        if (!stream.write(`${JSON.stringify(entry.line)}\n`))
          await new Promise((resolveDrain) => stream.once('drain', resolveDrain));
      }
      for (const { stream } of sinks.values()) stream.end();
    } catch (error) {
      for (const { stream } of sinks.values()) stream.destroy(error as Error);
      await Promise.allSettled(
        [...sinks.values()].map(async ({ stored }) => files.delete(record.tenant, (await stored).id)),
      );
      throw error;
    }
    const outputFileId = sinks.has('output')
      ? (await (sinks.get('output') as { stored: Promise<FileRecord> }).stored).id
      : null;
    const errorFileId = sinks.has('error')
      ? (await (sinks.get('error') as { stored: Promise<FileRecord> }).stored).id
      : null;
    const now = Date.now();
    const status = ending === 'completed' ? 'completed' : ending;
    const timestamp =
      status === 'completed'
        ? { completed_at: now }
        : status === 'cancelled'
          ? { cancelled_at: now }
          : { expired_at: now };
    // Counters are set from what the files hold (absolute, so a re-run finalize cannot count twice).
    if (
      !(await writeIfBatchExists(redis, prefix, batchId, [
        ['HSET', redisKeys.batch(prefix, batchId), 'completed', String(completed), 'failed', String(failed)],
      ]))
    ) {
      // Purged while its files were written: they go too.
      for (const id of [outputFileId, errorFileId])
        if (id) await files.delete(record.tenant, id).catch(() => undefined);
      return;
    }
    const final = {
      status,
      ...timestamp,
      completed,
      failed,
      output_file_id: outputFileId,
      error_file_id: errorFileId,
    } as const;
    // Announced before the status is stored (a delivery waits for it), so a crash in between cannot lose the event: the
    // re-run finalize announces the same event again.
    await this.#ended(batchId, final);
    await this.#store.transition(batchId, ['finalizing'], status, {
      ...timestamp,
      ...(outputFileId ? { output_file_id: outputFileId } : {}),
      ...(errorFileId ? { error_file_id: errorFileId } : {}),
    });
    await this.#retire(record);
    this.#log.info({ batchId, status, completed, failed, total: record.total, ms: now - started }, 'batch finalized');
  }
}

/**
 * How a job ended, read from BullMQ's records: completed in a generate queue (its result
 * address), failed in any stage (its code), or cancelled (marker). `undefined` while it runs or
 * waits. A job that has vanished without a marker is reported as an internal error.
 */
export async function readJobOutcome(
  producer: JobProducer,
  redis: Redis,
  prefix: string,
  jobId: string,
): Promise<RequestOutcome | undefined> {
  const at = Date.now();
  const cancelled = (await redis.exists(redisKeys.cancelled(prefix, jobId))) === 1;
  const cancelledOutcome: RequestOutcome = {
    ok: false,
    code: 'GB_ERR_CANCELLED',
    message: 'the request was cancelled',
    at,
  };
  // A job is in one of the generate queues or the other, never both, and either comes after extraction:
  // the later stages are read first (most jobs are text jobs, so `generate` first: one state read).
  for (const queue of [QUEUE_NAMES.generate, QUEUE_NAMES.generateMedia, QUEUE_NAMES.extract] as QueueName[]) {
    const state = await producer.queues[queue].getJobState(jobId);
    if (state === 'unknown') continue;
    // A cancelled job counts as ended only once no worker holds it (the abort reaches it in milliseconds).
    if (cancelled && state !== 'completed' && state !== 'failed')
      return state === 'active' ? undefined : cancelledOutcome;
    if (state === 'failed') {
      const job = await producer.queues[queue].getJob(jobId);
      const error = decodeFailedReason(job?.failedReason);
      return { ok: false, code: error.code, message: error.message, at: job?.finishedOn ?? at };
    }
    if (state === 'completed' && queue !== QUEUE_NAMES.extract) return completedIn(producer.queues[queue], jobId);
    // Running or waiting in this stage (an extract that completed is handing over to a generate queue).
    if (state === 'completed' && cancelled) return cancelledOutcome;
    return undefined;
  }
  return cancelled
    ? cancelledOutcome
    : { ok: false, code: 'GB_ERR_INTERNAL', message: 'the job of this request is no longer in the queues', at };
}

/**
 * The guarded writes that record ended jobs' outcomes, one list per batch: each job's outcome (once
 * per job: identical requests share it), its requests' in-flight entries removed, and the
 * batch's counters raised once by the sums (tokens once per job: what the engine really did).
 */
export function outcomeWrites(
  prefix: string,
  ended: ReadonlyArray<{ jobId: string; requests: readonly InflightRequest[]; outcome: RequestOutcome }>,
): Map<string, BatchWrite[]> {
  const byBatch = new Map<
    string,
    { outcomes: string[]; indexes: string[]; completed: number; failed: number; input: number; output: number }
  >();
  for (const { jobId, requests, outcome } of ended) {
    for (const batchId of new Set(requests.map((r) => r.batchId))) {
      const batch = byBatch.get(batchId) ?? { outcomes: [], indexes: [], completed: 0, failed: 0, input: 0, output: 0 };
      byBatch.set(batchId, batch);
      const indexes = requests.filter((r) => r.batchId === batchId).map((r) => String(r.index));
      batch.outcomes.push(jobId, encodeOutcome(outcome));
      batch.indexes.push(...indexes);
      if (outcome.ok) batch.completed += indexes.length;
      else batch.failed += indexes.length;
      if (outcome.ok && outcome.usage) {
        batch.input += outcome.usage.prompt_tokens;
        batch.output += outcome.usage.generated_tokens;
      }
    }
  }
  return new Map(
    [...byBatch].map(([batchId, batch]) => {
      const batchKey = redisKeys.batch(prefix, batchId);
      const writes: BatchWrite[] = [
        ['HSET', redisKeys.batchOutcomes(prefix, batchId), ...batch.outcomes],
        ['HDEL', redisKeys.batchInflight(prefix, batchId), ...batch.indexes],
      ];
      for (const [field, count] of [
        ['completed', batch.completed],
        ['failed', batch.failed],
        ['input_tokens', batch.input],
        ['output_tokens', batch.output],
      ] as const)
        if (count > 0) writes.push(['HINCRBY', batchKey, field, String(count)]);
      return [batchId, writes];
    }),
  );
}

/**
 * Drops from the feeder's mirror the requests of `jobIds` whose batch's write went through
 * (`recorded`). A batch whose write failed keeps its requests in flight, so they are recorded
 * again, counters once, when the job is read next.
 */
export function forgetRecorded(
  mirror: { byJob: Map<string, InflightRequest[]>; inflightCount: Map<string, number> },
  jobIds: readonly string[],
  recorded: ReadonlySet<string>,
): void {
  for (const jobId of jobIds) {
    const requests = mirror.byJob.get(jobId) ?? [];
    for (const request of requests)
      if (recorded.has(request.batchId))
        mirror.inflightCount.set(request.batchId, Math.max(0, (mirror.inflightCount.get(request.batchId) ?? 0) - 1));
    const left = requests.filter((r) => !recorded.has(r.batchId));
    if (left.length === 0) mirror.byJob.delete(jobId);
    else mirror.byJob.set(jobId, left);
  }
}

/** Commands {@link readJobOutcomes} reads per job in its one round trip. */
const OUTCOME_READS = 4;

/**
 * {@link readJobOutcome} of many jobs in one round trip, for the usual case: a text job that
 * ended in `generate`, or waits or runs there without a cancel. One MULTI reads each job's cancel
 * marker, its place in `generate`'s completed and failed sets and its record there; any other job
 * (cancelled before it ended, in another stage, gone) is read one by one as before.
 */
export async function readJobOutcomes(
  producer: JobProducer,
  redis: Redis,
  prefix: string,
  jobIds: readonly string[],
): Promise<Array<RequestOutcome | undefined>> {
  if (jobIds.length === 0) return [];
  const queue = producer.queues[QUEUE_NAMES.generate];
  const multi = redis.multi();
  for (const jobId of jobIds)
    multi
      .exists(redisKeys.cancelled(prefix, jobId))
      .zscore(queue.toKey('completed'), jobId)
      .zscore(queue.toKey('failed'), jobId)
      .hmget(queue.toKey(jobId), 'timestamp', 'finishedOn', 'returnvalue', 'failedReason');
  const replies = (await multi.exec()) ?? [];
  return Promise.all(
    jobIds.map(async (jobId, i) => {
      const [cancelled, completed, failed, fields] = replies
        .slice(i * OUTCOME_READS, (i + 1) * OUTCOME_READS)
        .map(([error, value]) => {
          if (error) throw error;
          return value;
        }) as [number, string | null, string | null, Array<string | null>];
      const [created, finishedOn, returnvalue, failedReason] = fields ?? [];
      const at = finishedOn ? Number(finishedOn) : Date.now();
      if (completed !== null) return completedOutcome(parseStoredJson(returnvalue), at);
      if (failed !== null) {
        const error = decodeFailedReason(failedReason ?? undefined);
        return { ok: false, code: error.code, message: error.message, at };
      }
      // Waiting or running in `generate`, and not cancelled: not ended yet.
      if (created && cancelled === 0) return undefined;
      return readJobOutcome(producer, redis, prefix, jobId);
    }),
  );
}

/** The outcome of a job completed in a generate queue, from its return value (`undefined` if it is not a result). */
function completedOutcome(returnvalue: unknown, at: number): RequestOutcome | undefined {
  const result = GenerateJobResult.safeParse(returnvalue);
  if (!result.success) return undefined;
  return {
    ok: true,
    sha: result.data.result_sha256,
    at,
    usage: { prompt_tokens: result.data.usage.prompt_tokens, generated_tokens: result.data.usage.generated_tokens },
  };
}

/** The outcome of a job completed in `queue` (a generate queue), from its return value. */
async function completedIn(
  queue: JobProducer['queues'][QueueName],
  jobId: string,
): Promise<RequestOutcome | undefined> {
  const job = await queue.getJob(jobId);
  return completedOutcome(job?.returnvalue, job?.finishedOn ?? Date.now());
}

/** Whose turn it is: tenants in order, and each tenant's batches in order; `allocateSlots` rotates both. */
export interface SlotTurns {
  tenants: string[];
  batches: Map<string, string[]>;
}

/**
 * Shares `free` window slots among batches that want more, one slot at a time: round-robin over
 * tenants first, then over the tenant's batches, so a tenant with ten batches gets no more than a
 * tenant with one, and a new small batch is served from its first turn. A batch that got a slot
 * goes to the back of its tenant's line, the tenant to the back of the tenants'. Pure but for
 * `turns`, which it updates so the next call continues the rotation.
 */
export function allocateSlots(
  free: number,
  batches: ReadonlyArray<{ id: string; tenant: string; wants: number }>,
  turns: SlotTurns,
): Map<string, number> {
  const slots = new Map<string, number>();
  if (free <= 0 || batches.length === 0) return slots;
  const byTenant = new Map<string, string[]>();
  for (const batch of batches) byTenant.set(batch.tenant, [...(byTenant.get(batch.tenant) ?? []), batch.id]);
  turns.tenants = rotation(turns.tenants, [...byTenant.keys()]);
  for (const [tenant, ids] of byTenant) turns.batches.set(tenant, rotation(turns.batches.get(tenant) ?? [], ids));
  for (const tenant of [...turns.batches.keys()]) if (!byTenant.has(tenant)) turns.batches.delete(tenant);
  const wants = new Map(batches.map((b) => [b.id, b.wants]));
  let progress = true;
  while (free > 0 && progress) {
    progress = false;
    for (const tenant of [...turns.tenants]) {
      if (free <= 0) break;
      const turn = turns.batches.get(tenant) ?? [];
      const batchId = turn.find((id) => (slots.get(id) ?? 0) < (wants.get(id) ?? 0));
      if (!batchId) continue;
      slots.set(batchId, (slots.get(batchId) ?? 0) + 1);
      free -= 1;
      progress = true;
      turns.batches.set(tenant, [...turn.filter((id) => id !== batchId), batchId]);
      turns.tenants = [...turns.tenants.filter((t) => t !== tenant), tenant];
    }
  }
  return slots;
}

/**
 * What a log line may say about an error here: its name, code and message, never the whole object
 * (a Redis error carries its command's arguments, which for `addBulk` are jobs with prompts in them).
 */
function describeError(error: unknown): { name: string; code?: string; message: string } {
  const known = toGembatchError(error);
  return {
    name: error instanceof Error ? error.name : typeof error,
    ...(known.code !== 'GB_ERR_INTERNAL' ? { code: known.code } : {}),
    message: known.message.slice(0, 500),
  };
}

/** Keeps the previous order of what is still present and appends the newcomers. */
function rotation(previous: readonly string[], present: readonly string[]): string[] {
  const set = new Set(present);
  const kept = previous.filter((id) => set.has(id));
  return [...kept, ...present.filter((id) => !kept.includes(id))];
}

/** KEYS[1] lock; ARGV[1] token; ARGV[2] ttl ms. Takes a free lock or extends our own. */
const LOCK_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
