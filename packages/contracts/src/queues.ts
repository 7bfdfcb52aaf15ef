/**
 * Queue names and Redis key layout, the one place they are spelled. BullMQ adds its own
 * `<prefix>:<queue>:...` keys under the same prefix.
 */
export const QUEUE_NAMES = {
  /** CPU: file → extracted document (text, page images, audio segments). */
  extract: 'extract',
  /** Engine: text-only generation; every node consumes it. */
  generate: 'generate',
  /** Engine: generation with images or audio; only nodes with a projector consume it. */
  generateMedia: 'generate-media',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];
export const ALL_QUEUES: readonly QueueName[] = Object.values(QUEUE_NAMES);

/** Queues of control work (no model, no document content): webhook deliveries and schedule runs. */
export const CONTROL_QUEUE_NAMES = {
  /** One job per webhook event, retried with backoff until the receiver answers 2xx. */
  webhooks: 'webhooks',
  /** One job per schedule run (cron ticks from BullMQ job schedulers, and "run now"). */
  scheduleRuns: 'schedule-runs',
} as const;
export type ControlQueueName = (typeof CONTROL_QUEUE_NAMES)[keyof typeof CONTROL_QUEUE_NAMES];

/** Default BullMQ/Redis key prefix; tests give each test its own. */
export const DEFAULT_REDIS_PREFIX = 'gembatch';

/**
 * BullMQ's own key layout under a prefix, the one place gembatch spells it: a job's hash is
 * `<prefix>:<queue>:<jobId>` (BullMQ names a parent's children by it in `getDependencies`,
 * `getChildrenValues` and `getIgnoredChildrenFailures`), and its other keys start with that too
 * (`…:logs`, `…:lock`).
 */
export const bullmqKeys = {
  /** Key of one job (a parent's name for a child). */
  job: (prefix: string, queue: string, jobId: string) => `${bullmqKeys.queuePrefix(prefix, queue)}${jobId}`,
  /** Every key of a queue starts with this; `MATCH` patterns add `*` (a job id holds no glob characters). */
  queuePrefix: (prefix: string, queue: string) => `${prefix}:${queue}:`,
  /**
   * The queue and job id a job key names, when it is a key of one of `queues` (checked in order,
   * whole name), else undefined. The id is everything after the queue, so it keeps a key's suffix.
   */
  parseJob<Queue extends string>(
    prefix: string,
    key: string,
    queues: readonly Queue[],
  ): { queue: Queue; id: string } | undefined {
    for (const queue of queues) {
      const start = bullmqKeys.queuePrefix(prefix, queue);
      if (key.startsWith(start)) return { queue, id: key.slice(start.length) };
    }
    return undefined;
  },
};

/** Redis keys owned by gembatch itself (not BullMQ). */
export const redisKeys = {
  /** Hash: one uploaded file record (tenant, sha256, bytes, filename). */
  file: (prefix: string, fileId: string) => `${prefix}:file:${fileId}`,
  /** Sorted set of live node ids scored by last heartbeat (ms). */
  nodes: (prefix: string) => `${prefix}:nodes`,
  /** Hash with TTL: a node's info, gauges and monotonic counters (see `NodeStats`). */
  node: (prefix: string, nodeId: string) => `${prefix}:node:${nodeId}`,
  /** Hash with TTL: a node's histogram bucket counts, field `<metric>|<label>|<le>`. */
  nodeHistograms: (prefix: string, nodeId: string) => `${prefix}:node:${nodeId}:hist`,
  /**
   * Hash without TTL: fleet-wide job histograms and counters (same field layout), added to by every
   * node with HINCRBY so they merge exactly and outlive nodes and exporter restarts.
   */
  fleetJobMetrics: (prefix: string) => `${prefix}:metrics:jobs`,
  /** Pub/Sub channel: the API publishes a job id here to cancel it; every worker aborts it if it runs it. */
  cancelChannel: (prefix: string) => `${prefix}:cancel`,
  /**
   * String with the retention TTL: set when a job is cancelled (JSON of its tenant, task and input,
   * so a removed waiting job still reads as `cancelled`). A stage must not enqueue the next while it exists.
   */
  cancelled: (prefix: string, jobId: string) => `${prefix}:cancelled:${jobId}`,
  /** Sorted set of a tenant's job ids scored by submission time (ms), trimmed to the retention window. */
  tenantJobs: (prefix: string, tenant: string) => `${prefix}:tenant:${tenant}:jobs`,
  /** Hash: a webhook delivery's state for one subject (a batch id): url, event, status, attempt count. */
  webhookDelivery: (prefix: string, subjectId: string) => `${prefix}:webhook:${subjectId}`,
  /** List of JSON attempts (time, HTTP status or error, ms) of a subject's webhook delivery, oldest first. */
  webhookAttempts: (prefix: string, subjectId: string) => `${prefix}:webhook:${subjectId}:attempts`,
  /** Hash: one schedule's definition (JSON fields) and state. */
  schedule: (prefix: string, scheduleId: string) => `${prefix}:schedule:${scheduleId}`,
  /** Sorted set of a tenant's schedule ids scored by creation time (ms). */
  tenantSchedules: (prefix: string, tenant: string) => `${prefix}:tenant:${tenant}:schedules`,
  /** Set of sha256 of every file a schedule has processed (its content-hash ledger). */
  scheduleLedger: (prefix: string, scheduleId: string) => `${prefix}:schedule:${scheduleId}:ledger`,
  /** Hash: a schedule's source files by path → `<bytes>:<mtime ms>:<sha256>`, so unchanged files are not read again each run. */
  scheduleHashes: (prefix: string, scheduleId: string) => `${prefix}:schedule:${scheduleId}:hashes`,
  /** Sorted set of a schedule's run ids scored by start time (ms). */
  scheduleRuns: (prefix: string, scheduleId: string) => `${prefix}:schedule:${scheduleId}:runs`,
  /** Hash: one schedule run (status, batch id, counts, times). */
  scheduleRun: (prefix: string, scheduleId: string, runId: string) => `${prefix}:schedule:${scheduleId}:run:${runId}`,
  /** Hash with a TTL: a schedule run's requests, custom_id → sha256 of the input file (marked seen once its result is written). */
  scheduleRunFiles: (prefix: string, scheduleId: string, runId: string) =>
    `${prefix}:schedule:${scheduleId}:run:${runId}:files`,
  /** String: the id of the run a schedule is executing now; a due run that finds it set is skipped. */
  scheduleActiveRun: (prefix: string, scheduleId: string) => `${prefix}:schedule:${scheduleId}:active`,
  /** Sorted set of a tenant's file ids scored by creation time (ms), for `GET /v1/files`. */
  tenantFiles: (prefix: string, tenant: string) => `${prefix}:tenant:${tenant}:files`,
  /** The same, for one purpose (`GET /v1/files?purpose=`). */
  tenantFilesByPurpose: (prefix: string, tenant: string, purpose: string) =>
    `${prefix}:tenant:${tenant}:files:${purpose}`,
  /** Sorted set of every file id scored by its expiry (ms): what the retention sweeper deletes. */
  fileExpiry: (prefix: string) => `${prefix}:files:expiry`,
  /** Set of what references a blob (`file:<id>`, `job:<id>`); the blob is deleted when the last one goes. */
  blobRefs: (prefix: string, sha256: string) => `${prefix}:blob:${sha256}:refs`,
  /** String with a short TTL: a blob is being deleted; a writer of the same content waits for it to go. */
  blobGcLock: (prefix: string, sha256: string) => `${prefix}:blob:${sha256}:gc`,
  /** Sorted set of `<job id>:<sha256>` (a job's reference to its inline text) scored by when to check whether the job is gone (ms). */
  jobBlobRefs: (prefix: string) => `${prefix}:blobrefs:jobs`,
  /** Hash: job id → sha256 of its inline text, so a job whose records are gone (cancelled while waiting) can still release it. */
  jobTexts: (prefix: string) => `${prefix}:blobrefs:job-texts`,
  /** Stream: the append-only audit log (who did what to which id; never content). */
  audit: (prefix: string) => `${prefix}:audit`,
  /** Sorted set of a tenant's jobs not known to be finished, scored by submission (ms): the queued-jobs quota counts it. */
  tenantOpenJobs: (prefix: string, tenant: string) => `${prefix}:tenant:${tenant}:open`,
  /** Hash per tenant: stored bytes (files) for the storage quota. */
  tenantUsage: (prefix: string, tenant: string) => `${prefix}:tenant:${tenant}:usage`,
  /** Hash: one API key created with `gembatch keys create`, found by the sha256 of the key (id, tenant, created_at); the key itself is never stored. */
  apiKey: (prefix: string, keySha256: string) => `${prefix}:apikey:${keySha256}`,
  /** Hash: key id → JSON `{id, tenant, created_at, sha256}` of every stored API key (listing and revocation). */
  apiKeys: (prefix: string) => `${prefix}:apikeys`,
  /** Hash: one batch record (status, counts, timestamps, cursor into its input file). */
  batch: (prefix: string, batchId: string) => `${prefix}:batch:${batchId}`,
  /** Hash: a batch's requests by input line index → job id, or an inline error for a request that never became a job. */
  batchRequests: (prefix: string, batchId: string) => `${prefix}:batch:${batchId}:requests`,
  /** Hash: a batch's finished jobs by job id → outcome (result address and usage, or error); shared by identical requests. */
  batchOutcomes: (prefix: string, batchId: string) => `${prefix}:batch:${batchId}:outcomes`,
  /** Hash: a batch's requests in the queues now, line index → job id (bounded by the feeder window). */
  batchInflight: (prefix: string, batchId: string) => `${prefix}:batch:${batchId}:inflight`,
  /** Set: custom_ids seen while validating a batch's input (deleted once it is validated). */
  batchCustomIds: (prefix: string, batchId: string) => `${prefix}:batch:${batchId}:custom-ids`,
  /** Sorted set of a tenant's batch ids scored by creation time (ms). */
  tenantBatches: (prefix: string, tenant: string) => `${prefix}:tenant:${tenant}:batches`,
  /** Sorted set of batches the feeder still has to drive (validating … finalizing), scored by creation time (ms). */
  activeBatches: (prefix: string) => `${prefix}:batches:active`,
  /** String with a TTL: the one API process that runs the batch feeder right now. */
  batchFeederLock: (prefix: string) => `${prefix}:batches:feeder-lock`,
  /** List per tenant: ids of its plain jobs waiting for a slot of the fair-share window, oldest first (`JobAdmission`). */
  pendingJobs: (prefix: string, tenant: string) => `${prefix}:admission:pending:${tenant}`,
  /** Hash: a pending plain job's id → its submission (`{queue, data, priority}`), until the feeder has added it to its queue. */
  pendingJobData: (prefix: string) => `${prefix}:admission:pending-data`,
  /** Set: tenants whose pending list is not empty. */
  pendingTenants: (prefix: string) => `${prefix}:admission:tenants`,
  /** Sorted set: plain jobs admitted to the queues and not yet ended, scored by admission time (ms); they hold window slots. */
  admittedJobs: (prefix: string) => `${prefix}:admission:admitted`,
  /** String with a TTL: batch requests the feeder has in the queues (its share of the window), for admissions at submission. */
  admissionBatchInflight: (prefix: string) => `${prefix}:admission:batch-inflight`,
  /** String with a TTL: the resource an `Idempotency-Key` created (`scope` is e.g. `batches` or `jobs`). */
  idempotency: (prefix: string, tenant: string, scope: string, key: string) =>
    `${prefix}:idempotency:${tenant}:${scope}:${key}`,
} as const;
