import path from 'node:path';
import { availableParallelism, hostname } from 'node:os';
import {
  ExtractJobData,
  GenerateJobData,
  QUEUE_NAMES,
  redisKeys,
  type GenerateJobResult,
  type NodeCapability,
} from '@gembatch/contracts';
import { DEFAULT_EXTRACT_LIMITS, ExtractionPool, defaultExtractionConcurrency } from '@gembatch/extract';
import {
  createLlamaCppEngine,
  createLlamaNodeEngine,
  flashAttentionOption,
  planChunks,
  probeHardware,
  resolveModel,
  threadpoolShortfall,
  threadpoolSizeOf,
  type Engine,
} from '@gembatch/inference';
import { NodeStatsReporter, defaultNodeId, listLiveNodes } from '@gembatch/node-stats';
import {
  closeRedisConnection,
  createRedisConnection,
  defineWorker,
  redisKeyPrefix,
  type GembatchWorker,
  type SettledEvent,
} from '@gembatch/queue';
import { FileSystemBlobStore } from '@gembatch/storage';
import {
  startEventLoopWatchdog,
  startMetricsServer,
  type EventLoopWatchdog,
  type Logger,
  type MetricsServer,
} from '@gembatch/telemetry';
import type { Redis } from 'ioredis';
import type { WorkerEnv } from '../env.ts';
import { createExtractProcessor } from '../processors/extract-processor.ts';
import { createGenerateProcessor, type ChunkResult } from '../processors/generate-processor.ts';
import { TaskRunner } from '../processors/task-runner.ts';
import type { WorkerEventSink } from './worker-events.ts';

/**
 * One worker node: owns the model, the BullMQ workers, the stats reporter and every connection,
 * and disposes them in order. `start()` resolves once the model is loaded and jobs are being taken.
 */
export class WorkerNode {
  readonly #env: WorkerEnv;
  readonly #log: Logger;
  readonly #events: WorkerEventSink | undefined;
  #redis: Redis | undefined;
  #blocking: Redis | undefined;
  #subscriber: Redis | undefined;
  #engine: Engine | undefined;
  #reporter: NodeStatsReporter | undefined;
  #metrics: MetricsServer | undefined;
  #watchdog: EventLoopWatchdog | undefined;
  #workers: GembatchWorker[] = [];
  #extractionPool: ExtractionPool | undefined;
  #closing: Promise<void> | undefined;

  /**
   * @param events Receives the typed start events (download progress, model decision, ready) that
   *   `gembatch up` shows. Defaults to none.
   */
  constructor(env: WorkerEnv, log: Logger, events?: WorkerEventSink) {
    this.#env = env;
    this.#log = log;
    this.#events = events;
  }

  get engine(): Engine | undefined {
    return this.#engine;
  }

  /** URL of this node's `/livez`, once started (unset when `GEMBATCH_LIVEZ_PORT` is 0). */
  get livezUrl(): string | undefined {
    return this.#watchdog?.livezUrl;
  }

  async start(): Promise<void> {
    const env = this.#env;
    // On a Redis Cluster the prefix carries a hash tag, so every key stays in one slot.
    const prefix = redisKeyPrefix(env.GEMBATCH_REDIS_PREFIX, env.REDIS_URL);
    const dataDir = path.resolve(env.GEMBATCH_DATA_DIR);
    const blobs = new FileSystemBlobStore({
      root: env.GEMBATCH_BLOBS_DIR ? path.resolve(env.GEMBATCH_BLOBS_DIR) : path.join(dataDir, 'blobs'),
    });
    // First: /livez answers while the model downloads and loads (alive, not yet ready).
    this.#watchdog = await startEventLoopWatchdog({
      ...(env.GEMBATCH_LIVEZ_PORT > 0
        ? { livezPort: env.GEMBATCH_LIVEZ_PORT, livezHost: env.GEMBATCH_METRICS_HOST }
        : {}),
      stallThresholdMs: env.GEMBATCH_LIVEZ_STALL_SECONDS * 1000,
      logger: this.#log,
    });
    this.#redis = createRedisConnection({ url: env.REDIS_URL, name: 'gembatch-worker', logger: this.#log });
    this.#blocking = createRedisConnection({
      url: env.REDIS_URL,
      name: 'gembatch-worker-bullmq',
      blocking: true,
      logger: this.#log,
    });

    const engine = await this.#loadEngine(path.join(dataDir, 'models'));
    this.#engine = engine;
    if (env.GEMBATCH_LIVEZ_ENGINE_STALL_SECONDS > 0) {
      // Decode calls are the engine's pulse: active sequences and none for this long means it is stuck.
      this.#watchdog.watchProgress({
        sample: () => {
          const stats = engine.stats();
          return { active: stats.activeSequences, progress: stats.decodeCallsTotal };
        },
        stallThresholdMs: env.GEMBATCH_LIVEZ_ENGINE_STALL_SECONDS * 1000,
      });
    }
    const node = env.GEMBATCH_NODE_ID ?? defaultNodeId(engine.info.accelerator === 'cpu' ? undefined : 0);
    const log = this.#log.child({ node });

    this.#reporter = new NodeStatsReporter({
      redis: this.#redis,
      prefix,
      identity: {
        node,
        host: hostname(),
        gpu: engine.info.gpu,
        accelerator: engine.info.accelerator,
        engine: engine.info.engine,
        model: engine.info.model,
        quant: engine.info.quant,
        capabilities: engine.info.capabilities,
        sequences: engine.info.sequences,
        contextPerSequence: engine.info.contextPerSequence,
      },
      engineStats: () => engine.stats(),
      logger: log,
    });
    this.#watchdog.register(this.#reporter.registry);
    if (env.GEMBATCH_METRICS_PORT > 0) {
      this.#metrics = await startMetricsServer({
        port: env.GEMBATCH_METRICS_PORT,
        host: env.GEMBATCH_METRICS_HOST,
        registry: this.#reporter.registry,
      });
      log.info({ url: this.#metrics.url }, 'node metrics listening');
    }

    const reporter = this.#reporter;
    const lease = {
      lockDurationMs: env.GEMBATCH_JOB_LOCK_MS,
      stalledIntervalMs: env.GEMBATCH_STALLED_CHECK_MS,
      maxStalledCount: env.GEMBATCH_MAX_STALLED_COUNT,
    };
    const runner = new TaskRunner({ engine, schemaRepairs: env.GEMBATCH_SCHEMA_REPAIRS });
    const generate = createGenerateProcessor({
      engine,
      runner,
      blobs,
      node,
      overlapTokens: env.GEMBATCH_CHUNK_OVERLAP_TOKENS,
      maxChunks: env.GEMBATCH_MAX_CHUNKS_PER_JOB,
      chunkText: async (text, maxTokens, overlapTokens) =>
        (await planChunks(text, { engine, maxTokens, overlapTokens })).map((chunk) => chunk.text),
    });
    const onGenerateSettled = (event: SettledEvent<GenerateJobResult | ChunkResult>) => {
      if (event.outcome === 'suspended') return;
      const data = event.payload as Partial<GenerateJobData>;
      // Chunk children are parts of one job: the parent's observation covers them.
      if (data.chunk) return;
      if (event.outcome === 'failed' && !event.error?.final) return;
      const result = event.outcome === 'completed' ? (event.result as GenerateJobResult) : undefined;
      reporter.recordJob({
        task: data.task ?? 'unknown',
        outcome: event.outcome,
        ...(event.error ? { errorCode: event.error.code } : {}),
        queueWaitMs: Math.max(0, event.ctx.firstStartedAt - event.ctx.enqueuedAt),
        durationMs: Date.now() - event.ctx.firstStartedAt,
        timeToFirstTokenMs: result?.timings.time_to_first_token_ms ?? null,
        interTokenMs: result?.timings.inter_token_ms ?? null,
      });
    };
    const generateQueues = engine.info.capabilities.some((c) => c !== 'text')
      ? [QUEUE_NAMES.generate, QUEUE_NAMES.generateMedia]
      : [QUEUE_NAMES.generate];
    for (const queue of generateQueues) {
      this.#workers.push(
        defineWorker({
          queue,
          prefix,
          connection: this.#blocking,
          // One job per sequence, plus prefetched ones that load their input meanwhile and wait
          // for a sequence in the engine, so a sequence never idles through a job's hand-offs.
          concurrency:
            engine.info.sequences + (env.GEMBATCH_GENERATE_PREFETCH ?? generatePrefetch(engine.info.sequences)),
          processor: generate,
          parse: (raw) => GenerateJobData.parse(raw),
          logger: log,
          onSettled: onGenerateSettled,
          ...lease,
        }),
      );
    }
    if (env.GEMBATCH_EXTRACT_ENABLED) {
      const redis = this.#redis;
      const extractConcurrency = env.GEMBATCH_EXTRACT_CONCURRENCY ?? defaultExtractionConcurrency();
      const pool = new ExtractionPool({
        size: extractConcurrency,
        timeoutMs: env.GEMBATCH_EXTRACT_TIMEOUT_SECONDS * 1000,
        memoryLimitBytes: env.GEMBATCH_EXTRACT_MEMORY_BYTES,
      });
      this.#extractionPool = pool;
      const extract = createExtractProcessor({
        extract: (options) => pool.extract(options),
        blobs,
        limits: {
          ...DEFAULT_EXTRACT_LIMITS,
          maxBytes: env.GEMBATCH_MAX_FILE_BYTES,
          maxPages: env.GEMBATCH_MAX_PAGES,
          maxImagePixels: env.GEMBATCH_MAX_IMAGE_PIXELS,
          imageMaxSide: env.GEMBATCH_IMAGE_MAX_SIDE,
          maxAudioSeconds: env.GEMBATCH_MAX_AUDIO_SECONDS,
        },
        scannedPages: env.GEMBATCH_SCANNED_PAGES,
        // This node counts even before its first heartbeat is written.
        fleetCapabilities: async () =>
          new Set<NodeCapability>([
            ...engine.info.capabilities,
            ...(await listLiveNodes(redis, prefix)).flatMap((n) => n.capabilities),
          ]),
      });
      this.#workers.push(
        defineWorker({
          queue: QUEUE_NAMES.extract,
          prefix,
          connection: this.#blocking,
          // One job per extraction process: the pool never queues behind BullMQ's back.
          concurrency: extractConcurrency,
          processor: extract,
          parse: (raw) => ExtractJobData.parse(raw),
          // A failed extraction must not keep the PDF password for the retention period.
          secretFields: ['password'],
          logger: log,
          ...lease,
          onSettled: (event) => {
            if (event.outcome === 'failed' && event.error?.final) {
              reporter.recordJob({
                task: (event.payload as ExtractJobData).task,
                outcome: 'failed',
                errorCode: event.error.code,
                queueWaitMs: Math.max(0, event.ctx.firstStartedAt - event.ctx.enqueuedAt),
                durationMs: Date.now() - event.ctx.firstStartedAt,
                timeToFirstTokenMs: null,
                interTokenMs: null,
              });
            }
          },
        }),
      );
    }

    this.#subscriber = createRedisConnection({
      url: env.REDIS_URL,
      name: 'gembatch-worker-cancel',
      blocking: true,
      logger: log,
    });
    await this.#subscriber.subscribe(redisKeys.cancelChannel(prefix));
    this.#subscriber.on('message', (_channel, jobId: string) => {
      for (const worker of this.#workers)
        if (worker.cancel(jobId, 'cancelled by request')) log.info({ jobId }, 'job cancelled');
    });

    await Promise.all(this.#workers.map((w) => w.waitUntilReady()));
    // Heartbeat last: /readyz turns green only when this node can really take jobs.
    await reporter.start();
    // As libuv read it when this process started (an empty value, which the env schema skips, is 1 thread).
    const threadpool = threadpoolSizeOf(process.env.UV_THREADPOOL_SIZE);
    const shortfall = threadpoolShortfall(threadpool, availableParallelism(), engine.info.sequences);
    if (shortfall) log.warn({ threadpool }, shortfall);
    log.info(
      {
        model: engine.info.model,
        quant: engine.info.quant,
        sequences: engine.info.sequences,
        contextPerSequence: engine.info.contextPerSequence,
        threadpool,
        queues: this.#workers.map((w) => w.queue),
      },
      'worker ready',
    );
    void this.#events?.({
      type: 'worker.ready',
      node,
      model: engine.info.model,
      quant: engine.info.quant,
      sequences: engine.info.sequences,
    });
  }

  async #loadEngine(modelsDir: string): Promise<Engine> {
    const env = this.#env;
    const gpu = env.GEMBATCH_GPU === 'cpu' ? false : env.GEMBATCH_GPU;
    const hardware = await probeHardware({
      gpu,
      ...(env.GEMBATCH_VRAM_BYTES ? { vramOverrideBytes: env.GEMBATCH_VRAM_BYTES } : {}),
    });
    let lastPercent = -10;
    const hfAccess = {
      ...(env.HF_ENDPOINT ? { endpoint: env.HF_ENDPOINT } : {}),
      ...(env.HF_TOKEN ? { token: env.HF_TOKEN } : {}),
    };
    const resolved = await resolveModel({
      ...(env.GEMBATCH_MODEL ? { model: env.GEMBATCH_MODEL } : {}),
      ...(env.GEMBATCH_QUANT ? { quant: env.GEMBATCH_QUANT } : {}),
      modelsDir: env.GEMBATCH_MODELS_DIR ?? modelsDir,
      ...(env.GEMBATCH_MODEL_LOCK ? { lockFile: env.GEMBATCH_MODEL_LOCK } : {}),
      hardware,
      ...hfAccess,
      // The projector's memory is planned in when this node will load one.
      withProjector: env.GEMBATCH_MMPROJ !== undefined,
      onProgress: ({ downloadedBytes, totalBytes }) => {
        const percent = totalBytes > 0 ? Math.floor((downloadedBytes / totalBytes) * 100) : 0;
        // A line per 5 %, and always the last one (99 % then 100 % is a step of 1).
        if (percent >= lastPercent + 5 || (percent >= 100 && lastPercent < 100)) {
          lastPercent = percent;
          this.#log.info({ downloadedBytes, totalBytes, percent }, 'downloading model');
          void this.#events?.({
            type: 'model.download',
            downloaded_bytes: downloadedBytes,
            total_bytes: totalBytes,
            percent: Math.min(100, percent),
          });
        }
      },
    });
    const sequences = env.GEMBATCH_SEQUENCES ?? resolved.choice?.sequences ?? 4;
    const contextPerSequence = env.GEMBATCH_CONTEXT_PER_SEQUENCE ?? resolved.choice?.contextPerSequence ?? 4096;
    this.#log.info(
      {
        memoryBytes: hardware.memoryBytes,
        accelerator: hardware.accelerator,
        model: resolved.path,
        quant: resolved.quant,
        source: resolved.source,
        why: resolved.choice?.reason ?? 'model given by GEMBATCH_MODEL',
        sequences,
        contextPerSequence,
      },
      'model decision',
    );
    void this.#events?.({
      type: 'model.decision',
      model: resolved.path,
      quant: resolved.quant,
      source: resolved.source,
      why: resolved.choice?.reason ?? 'model given by GEMBATCH_MODEL',
      sequences,
      context_per_sequence: contextPerSequence,
      memory_bytes: hardware.memoryBytes,
      accelerator: hardware.accelerator,
    });
    // What both engines take alike.
    const engineOptions = {
      modelPath: resolved.path,
      sequences,
      contextPerSequence,
      ...(env.GEMBATCH_THREADS ? { threads: env.GEMBATCH_THREADS } : {}),
      ...(env.GEMBATCH_FLASH_ATTENTION !== undefined
        ? { flashAttention: flashAttentionOption(env.GEMBATCH_FLASH_ATTENTION) }
        : {}),
      logger: this.#log,
    };
    if (env.GEMBATCH_MMPROJ) {
      const mmproj = await resolveModel({
        model: env.GEMBATCH_MMPROJ,
        modelsDir: env.GEMBATCH_MODELS_DIR ?? modelsDir,
        ...(env.GEMBATCH_MODEL_LOCK ? { lockFile: env.GEMBATCH_MODEL_LOCK } : {}),
        hardware,
        ...hfAccess,
      });
      return createLlamaNodeEngine({
        ...engineOptions,
        mmprojPath: mmproj.path,
        gpu: gpu === 'metal' ? 'auto' : gpu,
        imageMaxTokens: env.GEMBATCH_IMAGE_MAX_TOKENS,
      });
    }
    return createLlamaCppEngine({
      ...engineOptions,
      // The catalog's label (`Q4_0_QAT`, not the file type `Q4_0`), so metrics show which entry this node chose.
      quant: resolved.quant,
      gpu,
      ...(env.GEMBATCH_DRAFT_MODEL ? { draftModelPath: env.GEMBATCH_DRAFT_MODEL } : {}),
      prefixReuse: env.GEMBATCH_PREFIX_REUSE,
      ...(env.GEMBATCH_PREFIX_SNAPSHOTS !== undefined ? { prefixSnapshots: env.GEMBATCH_PREFIX_SNAPSHOTS } : {}),
      ...(env.GEMBATCH_PREFILL_CHUNK_TOKENS !== undefined
        ? { prefillChunkTokens: env.GEMBATCH_PREFILL_CHUNK_TOKENS }
        : {}),
    });
  }

  /**
   * Drains: stops taking jobs, gives active ones `graceMs` to finish (then aborts them and moves
   * them back to waiting, attempt count intact, for another node), removes the node from the
   * registry, disposes the model, closes connections. Idempotent.
   */
  close(graceMs = this.#env.GEMBATCH_SHUTDOWN_GRACE_SECONDS * 1000): Promise<void> {
    this.#closing ??= (async () => {
      await this.#subscriber?.unsubscribe().catch(() => undefined);
      await Promise.all(this.#workers.map((w) => w.close(graceMs)));
      await this.#extractionPool?.close();
      await this.#reporter?.close();
      await this.#metrics?.close();
      await this.#watchdog?.close();
      await this.#engine?.close();
      await Promise.all(
        [this.#subscriber, this.#blocking, this.#redis]
          .filter((c): c is Redis => c !== undefined)
          .map((c) => closeRedisConnection(c)),
      );
    })();
    return this.#closing;
  }
}

/**
 * Generate jobs a node takes beyond its sequences. Why as many as the sequences: short jobs (one
 * to tens of tokens) finish together, a whole batch at once, and each then spends 50-350 ms
 * storing its result and finishing in Redis (an fsync, a Lua script) while its sequence is free.
 * With a quarter of the sequences prefetched (the earlier default), three quarters of the batch
 * sat idle through every such hand-off; a full second wave is ready the moment the first ends.
 * More would only hold jobs that another node could start at once.
 */
function generatePrefetch(sequences: number): number {
  return Math.max(1, sequences);
}
