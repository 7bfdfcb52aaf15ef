import { hostname, totalmem } from 'node:os';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import {
  GembatchError,
  NODE_CAPABILITIES,
  NODE_HEARTBEAT_MS,
  isErrorCode,
  isTaskName,
  redisKeys,
  type Accelerator,
  type EngineName,
  type EngineStats,
  type NodeCapability,
  type NodeStats,
  errorMessage,
} from '@gembatch/contracts';
import {
  JOB_COUNTERS,
  JOB_HISTOGRAMS,
  NODE_FAMILIES,
  RateWindow,
  ScrapeSnapshot,
  addIncrements,
  bucketFor,
  counterIncrement,
  decodeMetricFields,
  encodeMetricField,
  histogramIncrements,
  histogramSamples,
  registerJobFamilies,
  registerNodeFamilies,
  type Logger,
  type NodeMetricsInput,
} from '@gembatch/telemetry';
import { incrementFleetJobMetrics, removeNode, writeNodeHeartbeat } from './node-registry.ts';

/** What a node is, published with every heartbeat (labels of its series). */
export interface NodeIdentity {
  /** Stable node id (`defaultNodeId()` or `GEMBATCH_NODE_ID`): letters, digits, `.`, `_`, `-`, ≤ 128 chars. */
  node: string;
  host: string;
  /** GPU device name, or `cpu`. */
  gpu: string;
  accelerator: Accelerator;
  engine: EngineName;
  model: string;
  quant: string;
  capabilities: NodeCapability[];
  /** Parallel sequences (capacity). */
  sequences: number;
  contextPerSequence: number;
}

/** One finished job, as the worker saw it. Content-free: no ids, no text. */
export interface JobObservation {
  /** Task name (from contracts); anything else is counted as `unknown`. */
  task: string;
  outcome: 'completed' | 'failed';
  /** Error code of a failed job (from contracts); missing or unknown codes count as `GB_ERR_INTERNAL`. */
  errorCode?: string;
  queueWaitMs: number;
  durationMs: number;
  timeToFirstTokenMs: number | null;
  interTokenMs: number | null;
}

export interface NodeStatsReporterOptions {
  /** A connection the reporter may use (not closed by it). */
  redis: Redis;
  /** Redis key prefix (`GEMBATCH_REDIS_PREFIX`). */
  prefix: string;
  identity: NodeIdentity;
  /** Reads the engine's counters; called every heartbeat and on each scrape of `registry`. */
  engineStats: () => EngineStats;
  /** Heartbeat period. Defaults to `NODE_HEARTBEAT_MS` (2 s). */
  intervalMs?: number;
  /** Logs heartbeat failures (codes, no content). Defaults to none. */
  logger?: Logger;
}

const NODE_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The node id of this process: `GEMBATCH_NODE_ID` when set, else `<hostname>-gpu<index>` for a GPU
 * node or `<hostname>-cpu` (hostname characters outside `[A-Za-z0-9._-]` become `-`).
 *
 * @param gpuIndex Index of the GPU this process drives; omit for a CPU node.
 * @param env Where `GEMBATCH_NODE_ID` is read. Defaults to `process.env`.
 */
export function defaultNodeId(
  gpuIndex?: number,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const override = env.GEMBATCH_NODE_ID?.trim();
  if (override) return override;
  // Leave room for the `-gpuNNN` suffix within the 128-character id limit.
  const host =
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 100) || 'node';
  return gpuIndex === undefined ? `${host}-cpu` : `${host}-gpu${gpuIndex}`;
}

/** Memory the process may use: its cgroup limit when there is one, else the host's RAM. */
function availableMemoryBytes(): number {
  const constrained = process.constrainedMemory?.() ?? 0;
  const total = totalmem();
  return constrained > 0 && constrained < total ? constrained : total;
}

function validateIdentity(identity: NodeIdentity): void {
  const problems: string[] = [];
  if (!NODE_ID.test(identity.node))
    problems.push(
      `node id ${JSON.stringify(identity.node.slice(0, 140))} must be 1-128 letters, digits, '.', '_' or '-'`,
    );
  if (!Number.isInteger(identity.sequences) || identity.sequences < 1)
    problems.push('sequences must be a positive integer');
  if (!Number.isInteger(identity.contextPerSequence) || identity.contextPerSequence < 1)
    problems.push('contextPerSequence must be a positive integer');
  for (const capability of identity.capabilities)
    if (!NODE_CAPABILITIES.includes(capability)) problems.push(`unknown capability ${JSON.stringify(capability)}`);
  if (problems.length > 0) throw new GembatchError('GB_ERR_CONFIG', `invalid node identity: ${problems.join('; ')}`);
}

/** Seconds from ms, or undefined for a value that cannot be observed (negative, NaN, null). */
function seconds(ms: number | null | undefined): number | undefined {
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
}

/**
 * Why 200 ms: a flush is one MULTI of ~10 HINCRBYFLOATs; sent per job it was a Redis transaction
 * per one-token job (20-60 a second on a small node). Jobs finishing within 200 ms share one, and
 * the exporter's counts lag by at most that.
 */
const JOB_METRICS_FLUSH_MS = 200;

/**
 * Publishes a worker node's stats: every `intervalMs` a heartbeat hash in Redis (info, tok/s over
 * the last 60 s, token totals from the engine's counters, sequences, memory, the decode-batch
 * histogram) with a TTL, so the exporter sees live nodes only; and, for each finished job, bucket
 * increments of the job histograms in a fleet-wide hash (HINCRBY, exact across nodes). `registry`
 * serves the same families for this node alone on its own `/metrics`.
 */
export class NodeStatsReporter {
  /** prom-client registry with this node's own series (same names and labels as the exporter's). */
  readonly registry: Registry;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #identity: NodeIdentity;
  readonly #engineStats: () => EngineStats;
  readonly #intervalMs: number;
  readonly #logger: Logger | undefined;
  readonly #startedAt = Date.now();
  readonly #rates = new RateWindow();
  /** This node's job metric fields since start (for `registry`). */
  readonly #jobTotals = new Map<string, number>();
  /** Job metric increments not yet added to Redis. */
  #pending = new Map<string, number>();
  #lastEngineStats: EngineStats | undefined;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #flushing: Promise<void> | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #failing = false;
  /** Whether the last job-metrics send failed (one warning per outage, not one per retry). */
  #metricsFailing = false;

  constructor(options: NodeStatsReporterOptions) {
    validateIdentity(options.identity);
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#identity = { ...options.identity, capabilities: [...options.identity.capabilities] };
    this.#engineStats = options.engineStats;
    // Floor of 100 ms: a smaller period would only load Redis; the TTL (15 s) needs a beat well within it.
    this.#intervalMs = Math.max(100, options.intervalMs ?? NODE_HEARTBEAT_MS);
    this.#logger = options.logger;
    this.registry = new Registry();
    const snapshot = new ScrapeSnapshot(async () => [this.#nodeInput(this.#snapshot(Date.now()))]);
    registerNodeFamilies(this.registry, () => snapshot.get());
    registerJobFamilies(this.registry, () => decodeMetricFields(this.#jobTotals));
  }

  /**
   * Writes the first heartbeat (resolving once it is in Redis, so the node is visible when this
   * returns) and starts the periodic ones. Rejects with `GB_ERR_SERVICE_UNAVAILABLE` when Redis
   * does not take it. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    if (this.#closing) return Promise.reject(new GembatchError('GB_ERR_CONFLICT', 'the node stats reporter is closed'));
    this.#starting ??= (async () => {
      try {
        await this.#warnIfNodeIdTaken();
        await this.#heartbeat();
      } catch (error) {
        throw new GembatchError(
          'GB_ERR_SERVICE_UNAVAILABLE',
          `could not publish node stats to Redis: ${errorMessage(error)}`,
          { cause: error },
        );
      }
      if (!this.#closing) this.#schedule();
    })();
    return this.#starting;
  }

  /**
   * Counts a finished job in the histograms and counters; sent to Redis within
   * `JOB_METRICS_FLUSH_MS` together with the other jobs that finished meanwhile (and retried with
   * the next heartbeat). Never throws.
   */
  recordJob(observation: JobObservation): void {
    const task = isTaskName(observation.task) ? observation.task : 'unknown';
    const outcome = observation.outcome === 'completed' ? 'completed' : 'failed';
    const increments: Array<[string, number]> = [counterIncrement(JOB_COUNTERS.jobs, [task, outcome])];
    const duration = seconds(observation.durationMs);
    if (duration !== undefined)
      increments.push(...histogramIncrements(JOB_HISTOGRAMS.jobDuration, [task, outcome], duration));
    const wait = seconds(observation.queueWaitMs);
    if (wait !== undefined) increments.push(...histogramIncrements(JOB_HISTOGRAMS.queueWait, [task], wait));
    const ttft = seconds(observation.timeToFirstTokenMs);
    if (ttft !== undefined) increments.push(...histogramIncrements(JOB_HISTOGRAMS.timeToFirstToken, [task], ttft));
    const itl = seconds(observation.interTokenMs);
    if (itl !== undefined) increments.push(...histogramIncrements(JOB_HISTOGRAMS.interTokenLatency, [task], itl));
    if (outcome === 'failed')
      increments.push(
        counterIncrement(JOB_COUNTERS.errors, [
          isErrorCode(observation.errorCode) ? observation.errorCode : 'GB_ERR_INTERNAL',
        ]),
      );
    addIncrements(this.#jobTotals, increments);
    addIncrements(this.#pending, increments);
    if (this.#flushTimer || this.#closing) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      void this.#flush();
    }, JOB_METRICS_FLUSH_MS);
    this.#flushTimer.unref();
  }

  /**
   * Stops the heartbeats, sends job counts still pending, and removes the node from Redis at once
   * (its series vanish from the exporter without waiting for the TTL). Idempotent; never throws.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
      await this.#starting?.catch(() => undefined);
      await this.#beating;
      await this.#flush();
      try {
        await removeNode(this.#redis, this.#prefix, this.#identity.node);
      } catch (error) {
        this.#logger?.warn(
          { node: this.#identity.node, err: describe(error) },
          'could not remove node stats from Redis; they expire with their TTL',
        );
      }
    })();
    return this.#closing;
  }

  /**
   * Two live processes with one node id would overwrite each other's counters (Prometheus would
   * see resets). A hash of another process (different start time) that heartbeated within two
   * periods means that is happening; a crashed predecessor's hash is older and is simply replaced.
   */
  async #warnIfNodeIdTaken(): Promise<void> {
    const [startedAt, heartbeatAt, host] = await this.#redis.hmget(
      redisKeys.node(this.#prefix, this.#identity.node),
      'started_at',
      'heartbeat_at',
      'host',
    );
    if (startedAt === null || heartbeatAt === null || Number(startedAt) === this.#startedAt) return;
    if (Date.now() - Number(heartbeatAt) < 2 * this.#intervalMs) {
      this.#logger?.warn(
        { node: this.#identity.node, otherHost: host, code: 'GB_ERR_CONFIG' },
        'another live process publishes stats under this node id; give each worker its own GEMBATCH_NODE_ID',
      );
    }
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#beating = this.#heartbeat()
        .then(() => {
          if (this.#failing) this.#logger?.info({ node: this.#identity.node }, 'node stats heartbeat recovered');
          this.#failing = false;
        })
        .catch((error: unknown) => {
          // Log the first failure of a streak only: Redis being down is already reported elsewhere.
          if (!this.#failing)
            this.#logger?.warn(
              { node: this.#identity.node, code: 'GB_ERR_SERVICE_UNAVAILABLE', err: describe(error) },
              'node stats heartbeat failed; retrying',
            );
          this.#failing = true;
        })
        .finally(() => {
          this.#beating = undefined;
          if (!this.#closing) this.#schedule();
        });
      void this.#flush();
    }, this.#intervalMs);
    // The worker's queues keep the process alive; the reporter alone must not.
    this.#timer.unref();
  }

  async #heartbeat(): Promise<void> {
    const now = Date.now();
    const snapshot = this.#snapshot(now);
    this.#rates.add(now, [snapshot.engine.generationTokensTotal, snapshot.engine.promptTokensTotal]);
    await writeNodeHeartbeat(this.#redis, this.#prefix, snapshot.stats, snapshot.decodeFields);
  }

  /** Sends pending job increments; on failure keeps them for the next try. One send at a time. */
  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => (this.#pending.size > 0 ? this.#flush() : undefined));
    if (this.#pending.size === 0) return Promise.resolve();
    const batch = this.#pending;
    this.#pending = new Map();
    this.#flushing = incrementFleetJobMetrics(this.#redis, this.#prefix, batch)
      .then((refused) => {
        if (this.#metricsFailing) this.#logger?.info({ node: this.#identity.node }, 'job metrics sent to Redis again');
        this.#metricsFailing = false;
        if (refused.length > 0)
          this.#logger?.warn(
            {
              node: this.#identity.node,
              fields: refused.slice(0, 5),
              refused: refused.length,
              code: 'GB_ERR_INTERNAL',
            },
            'Redis refused some job metric fields (not numbers?); those counts are lost',
          );
      })
      .catch((error: unknown) => {
        // The transaction did not run: put them back for the next heartbeat (a reply lost after a
        // successful write would count twice; rare, and only when the connection drops).
        addIncrements(this.#pending, batch);
        if (!this.#metricsFailing)
          this.#logger?.warn(
            { node: this.#identity.node, fields: batch.size, code: 'GB_ERR_SERVICE_UNAVAILABLE', err: describe(error) },
            'could not send job metrics to Redis; will retry',
          );
        this.#metricsFailing = true;
      })
      .finally(() => {
        this.#flushing = undefined;
      });
    return this.#flushing;
  }

  /** The node's stats at `now`: engine counters, rates over the window, memory. */
  #snapshot(now: number): { engine: EngineStats; stats: NodeStats; decodeFields: Map<string, number> } {
    let engine: EngineStats;
    try {
      engine = this.#engineStats();
      this.#lastEngineStats = engine;
    } catch (error) {
      // A closing engine may refuse; publish the last numbers rather than nothing.
      engine = this.#lastEngineStats ?? {
        activeSequences: 0,
        promptTokensTotal: 0,
        generationTokensTotal: 0,
        decodeCallsTotal: 0,
        decodeTokensTotal: 0,
        fullDecodeCallsTotal: 0,
        decodeBatchTokens: new Map(),
        vramTotalBytes: 0,
        vramUsedBytes: 0,
      };
      this.#logger?.debug(
        { node: this.#identity.node, err: describe(error) },
        'engine stats unavailable; using the last ones',
      );
    }
    const [generationRate = 0, promptRate = 0] = this.#rates.rates(now, [
      engine.generationTokensTotal,
      engine.promptTokensTotal,
    ]);
    const identity = this.#identity;
    const stats: NodeStats = {
      node: identity.node,
      host: identity.host,
      gpu: identity.gpu,
      accelerator: identity.accelerator,
      engine: identity.engine,
      model: identity.model,
      quant: identity.quant,
      capabilities: [...identity.capabilities],
      started_at: this.#startedAt,
      heartbeat_at: now,
      sequences: identity.sequences,
      active_sequences: engine.activeSequences,
      context_per_sequence: identity.contextPerSequence,
      generation_tokens_per_second: round(generationRate),
      prompt_tokens_per_second: round(promptRate),
      generation_tokens_total: engine.generationTokensTotal,
      prompt_tokens_total: engine.promptTokensTotal,
      prompt_tokens_reused_total: engine.promptTokensReusedTotal ?? 0,
      prompt_tokens_evaluated_total: engine.promptTokensEvaluatedTotal ?? engine.promptTokensTotal,
      decode_calls_total: engine.decodeCallsTotal,
      ...stepSeconds(engine.stepTimeMsTotal),
      vram_total_bytes: engine.vramTotalBytes,
      vram_used_bytes: engine.vramUsedBytes,
      ram_used_bytes: process.memoryUsage.rss(),
      ram_total_bytes: availableMemoryBytes(),
    };
    return { engine, stats, decodeFields: decodeBatchFields(engine) };
  }

  #nodeInput(snapshot: { stats: NodeStats; decodeFields: Map<string, number> }): NodeMetricsInput {
    const [decodeBatchTokens] = histogramSamples(
      NODE_FAMILIES.decodeBatchTokens,
      decodeMetricFields(snapshot.decodeFields),
      { node: snapshot.stats.node },
    );
    return { stats: snapshot.stats, decodeBatchTokens };
  }
}

/** The engine's step times as seconds (to the millisecond), the fields `NodeStats` names them by; none when it does not measure them. */
function stepSeconds(times: EngineStats['stepTimeMsTotal']): Partial<NodeStats> {
  if (!times) return {};
  return {
    step_decode_seconds_total: round(times.decode / 1000),
    step_sampling_seconds_total: round(times.sampling / 1000),
    step_scheduling_seconds_total: round(times.scheduling / 1000),
  };
}

/** Rates to 3 decimals: enough for tok/s, and Redis holds short strings. */
function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/**
 * The engine's tokens-per-decode histogram in the catalog's power-of-two buckets (each engine
 * bucket goes to the smallest catalog bound at or above its own bound: exact for power-of-two or
 * per-size engine buckets), as absolute field values.
 */
function decodeBatchFields(engine: EngineStats): Map<string, number> {
  const spec = NODE_FAMILIES.decodeBatchTokens;
  const fields = new Map<string, number>();
  let bucketed = 0;
  for (const [bound, count] of engine.decodeBatchTokens) {
    if (!(count > 0)) continue;
    bucketed += count;
    const le = bucketFor(bound, spec.buckets);
    if (Number.isFinite(le)) addIncrements(fields, [[encodeMetricField(spec.key, [], le), count]]);
  }
  if (engine.decodeCallsTotal === 0 && bucketed === 0) return fields;
  fields.set(encodeMetricField(spec.key, [], 'sum'), engine.decodeTokensTotal);
  fields.set(encodeMetricField(spec.key, [], 'count'), Math.max(engine.decodeCallsTotal, bucketed));
  return fields;
}

function describe(error: unknown): { name: string; message: string } {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: 'Error', message: String(error) };
}
