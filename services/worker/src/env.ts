import { z } from 'zod';
import { envBool, envBytes, envInt } from '@gembatch/config';
import { isRedisUrl } from '@gembatch/queue';

/** Worker configuration: one variable per setting, parsed in `main.ts` with `loadEnv`. */
export const WorkerEnv = z.object({
  /** Redis the queues live in. */
  REDIS_URL: z
    .string()
    .refine(
      isRedisUrl,
      'must be redis://, rediss://, redis+cluster://h1:p1,h2:p2, redis+sentinel://host:26379/master or a list of redis:// URLs',
    )
    .default('redis://127.0.0.1:6379'),
  /** Key prefix of every queue and record (separate stacks can share one Redis). */
  GEMBATCH_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('gembatch'),
  /** Blob store root and model cache (`<dir>/blobs`, `<dir>/models`). */
  GEMBATCH_DATA_DIR: z.string().default('.gembatch'),
  /** Blob store root, shared by the API and every worker (NFS / ReadWriteMany across hosts). Defaults to `<GEMBATCH_DATA_DIR>/blobs`. */
  GEMBATCH_BLOBS_DIR: z.string().min(1).optional(),
  /** A GGUF path or an `hf:` URI. Unset: the Gemma 4 12B quantization that fits this node, downloaded on first start. */
  GEMBATCH_MODEL: z.string().optional(),
  /** Force a catalog quantization (e.g. `Q4_K_M`) instead of the automatic choice. */
  GEMBATCH_QUANT: z.string().optional(),
  /** Multimodal projector (`mmproj`) GGUF path or `hf:` URI; enables image and audio jobs on this node. */
  GEMBATCH_MMPROJ: z.string().optional(),
  /** Where downloaded models go. Defaults to `<GEMBATCH_DATA_DIR>/models`. */
  GEMBATCH_MODELS_DIR: z.string().optional(),
  /**
   * The model lock: commit, sha256 and size of each downloaded model file, checked on every later
   * download and load (trust on first use). Defaults to `<models dir>/models.lock.json`.
   */
  GEMBATCH_MODEL_LOCK: z.string().min(1).optional(),
  /** Parallel sequences (jobs decoding together). Unset: chosen from memory (see the quantization table). */
  GEMBATCH_SEQUENCES: envInt(1, 256).optional(),
  /** Context tokens per sequence. Unset: the quantization choice's context (capped by the model's training context). */
  GEMBATCH_CONTEXT_PER_SEQUENCE: envInt(256, 262_144).optional(),
  /** Engine threads. Unset: chosen from the core count (never node-llama-cpp's default, which is 100× slower on small machines). */
  GEMBATCH_THREADS: envInt(1, 1024).optional(),
  /**
   * Node's libuv threadpool, which libuv reads when the process starts (this schema only checks it;
   * the worker reports and warns on what libuv read): each sequence samples its next token as a
   * task there, so it caps how many sample at once. `gembatch up` and the container image set it to
   * the core count, at least 2; see `engineThreadpoolSize` in the inference package.
   */
  UV_THREADPOOL_SIZE: envInt(1, 1024).optional(),
  /** Accelerator: auto, cuda, metal, vulkan or cpu. */
  GEMBATCH_GPU: z.enum(['auto', 'cuda', 'metal', 'vulkan', 'cpu']).default('auto'),
  /** Pretend this node has this much accelerator memory (operators and tests), e.g. `24GB`. */
  GEMBATCH_VRAM_BYTES: envBytes.optional(),
  /** Hugging Face base URL for `hf:` downloads (a mirror or a test server). Unset: `https://huggingface.co`. */
  HF_ENDPOINT: z.string().url().optional(),
  /** Hugging Face token for gated or private repositories; sent to the endpoint's origin only, never logged. */
  HF_TOKEN: z.string().optional(),
  /** Draft model for speculative decoding (off when unset). */
  GEMBATCH_DRAFT_MODEL: z.string().optional(),
  /** Keep a sequence's tokens between jobs and evaluate only the part of the next prompt that differs (shared instruction evaluated once per sequence). */
  GEMBATCH_PREFIX_REUSE: envBool.default(true),
  /**
   * With prefix reuse, evaluate a prefix shared by several jobs once per node and load its saved KV state into the
   * other sequences (files in /dev/shm, removed at exit). Unset: on for CPU nodes, off on GPUs (not measured there).
   */
  GEMBATCH_PREFIX_SNAPSHOTS: envBool.optional(),
  /**
   * Prompt tokens a joining job adds per decode step while others generate (chunked prefill); 0 = whole prompt at once.
   * Unset: the engine's default (max(64, sequences) on CPU, 256 on a GPU).
   */
  GEMBATCH_PREFILL_CHUNK_TOKENS: envInt(0, 65_536).optional(),
  /**
   * llama.cpp's fused flash-attention kernel: on, off or auto (where supported). Unset: the text engine turns it off on
   * CPU nodes (1.7–2.2× faster there), the multimodal engine keeps auto (its build is 2.6× slower without it).
   */
  GEMBATCH_FLASH_ATTENTION: z.enum(['auto', 'on', 'off']).optional(),
  /**
   * Generate jobs a node takes beyond its sequences: they load their input and wait for a sequence,
   * so a sequence freed by a finishing job never waits on Redis. Unset: as many as the sequences.
   */
  GEMBATCH_GENERATE_PREFETCH: envInt(0, 4096).optional(),
  /** Image token budget per image on multimodal nodes. */
  GEMBATCH_IMAGE_MAX_TOKENS: envInt(40, 4096).default(280),
  /** Stable node id in metrics. Defaults to `<hostname>-gpu<index>` or `<hostname>-cpu`. */
  GEMBATCH_NODE_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,128}$/)
    .optional(),
  /** Port of this node's own `/metrics` (0 disables it). */
  GEMBATCH_METRICS_PORT: envInt(0, 65535).default(9465),
  /** Interface the node's `/metrics` listens on. */
  GEMBATCH_METRICS_HOST: z.string().default('127.0.0.1'),
  /** Port of `/livez` (served by a watchdog thread on GEMBATCH_METRICS_HOST; fails while the event loop is blocked). 0 disables it. */
  GEMBATCH_LIVEZ_PORT: envInt(0, 65535).default(9466),
  /** Seconds the event loop may go without a tick before `/livez` answers 503. */
  GEMBATCH_LIVEZ_STALL_SECONDS: envInt(1, 600).default(5),
  /** Seconds the engine may hold active sequences without a decode step before `/livez` answers 503 (a hung GPU or decode). 0 disables it. */
  GEMBATCH_LIVEZ_ENGINE_STALL_SECONDS: envInt(0, 3600).default(120),
  /** Extraction processes on this node (jobs at once: PDF parsing, OCR, audio decoding). Unset: cores − 1, at least 1. */
  GEMBATCH_EXTRACT_CONCURRENCY: envInt(1, 256).optional(),
  /** Deadline of one extraction in seconds; past it the process is killed and the job fails with `GB_ERR_EXTRACT_TIMEOUT`. */
  GEMBATCH_EXTRACT_TIMEOUT_SECONDS: envInt(1, 86_400).default(1_800),
  /** Resident memory one extraction (its process and the tools it runs) may use; above it the job fails with `GB_ERR_EXTRACT_MEMORY`. */
  GEMBATCH_EXTRACT_MEMORY_BYTES: envBytes.default(2 * 1024 ** 3),
  /** Files above this are refused by extraction. */
  GEMBATCH_MAX_FILE_BYTES: envBytes.default(512 * 1024 ** 2),
  /** PDF page cap. */
  GEMBATCH_MAX_PAGES: envInt(1, 1_000_000).default(5_000),
  /** Decompression-bomb guard for images (pixels). */
  GEMBATCH_MAX_IMAGE_PIXELS: envInt(1, 2 ** 31).default(100_000_000),
  /** Longest image side sent to the model (px). */
  GEMBATCH_IMAGE_MAX_SIDE: envInt(64, 8192).default(1536),
  /** Audio duration cap (s). */
  GEMBATCH_MAX_AUDIO_SECONDS: envInt(1, 86_400).default(3_600),
  /** How scanned PDF pages are read: `auto` (vision on a projector node, else OCR), `ocr`, or `vision`. */
  GEMBATCH_SCANNED_PAGES: z.enum(['auto', 'ocr', 'vision']).default('auto'),
  /** Token overlap between consecutive chunks of a long input. */
  GEMBATCH_CHUNK_OVERLAP_TOKENS: envInt(0, 8192).default(128),
  /** Most chunk jobs one input may fan out into; a longer input fails with `GB_ERR_INPUT_TOO_LARGE` naming this variable. */
  GEMBATCH_MAX_CHUNKS_PER_JOB: envInt(1, 1_000_000).default(1_000),
  /** Repair attempts when structured output fails JSON Schema validation. */
  GEMBATCH_SCHEMA_REPAIRS: envInt(0, 10).default(2),
  /** Seconds active jobs get to finish on SIGTERM before they are handed back. */
  GEMBATCH_SHUTDOWN_GRACE_SECONDS: envInt(0, 3600).default(30),
  /** ms a job's lock lasts unless renewed (renewed every half of it); a crashed node's jobs come back within this plus the stall check. */
  GEMBATCH_JOB_LOCK_MS: envInt(1_000, 600_000).default(10_000),
  /** ms between checks for jobs of dead nodes (expired locks); such jobs go back to waiting. */
  GEMBATCH_STALLED_CHECK_MS: envInt(100, 600_000).default(5_000),
  /** Times a job may be taken back from a dead node before it fails with a stall error. */
  GEMBATCH_MAX_STALLED_COUNT: envInt(0, 100).default(2),
  /** Process extraction jobs on this node. */
  GEMBATCH_EXTRACT_ENABLED: envBool.default(true),
  /** pino level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type WorkerEnv = z.output<typeof WorkerEnv>;
