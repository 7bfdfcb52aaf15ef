/**
 * Node's libuv threadpool and the engine. node-llama-cpp runs each decode, and after it each
 * sequence's sampling of its next token, as a task on that pool, so at most `UV_THREADPOOL_SIZE`
 * sequences sample at once. A sample scans the whole vocabulary (Gemma's has 262,144 tokens) and,
 * under a JSON-schema grammar, checks candidates against it: with that vocabulary, `pnpm
 * bench:sampling` measured 16 grammar-constrained sequences generating 0.59–0.76× as fast with one
 * pool thread as with four on the 2-core build host (two runs). libuv reads the variable once,
 * when the pool first starts, which happens before any module of ours runs; so whoever starts the
 * process must set it (`gembatch up` and the container image do).
 */

/** libuv's pool size when `UV_THREADPOOL_SIZE` is not set. */
const LIBUV_DEFAULT_THREADPOOL_SIZE = 4;
/** libuv's largest pool. */
const LIBUV_MAX_THREADPOOL_SIZE = 1024;

/** Fewest pool threads for an engine process: a long decode never holds the only one while files wait. */
const MIN_ENGINE_THREADPOOL_SIZE = 2;

/**
 * The pool size for a process that runs the engine on a host with `cores` cores: one thread per
 * core, at least 2. Why per core: decoding and sampling take turns (a step's samples start when its
 * decode ends), so while sequences sample every core is free; with libuv's 4, a 16-core GPU node
 * samples 64 sequences 4 at a time. More threads than cores only contend: on the 2-core build host,
 * 4 threads against 2 made stories260K's sampling 1.57 against 0.98 ms per step (`pnpm
 * bench:sampling --model <stories260K> --schema none --tokens 64`: 0.85× the tok/s), and
 * `bench:pipeline` generated 15–20 % fewer tok/s through the engine and the stack.
 */
export function engineThreadpoolSize(cores: number): number {
  return Math.max(MIN_ENGINE_THREADPOOL_SIZE, Math.floor(cores));
}

/**
 * The pool size libuv starts with for this `UV_THREADPOOL_SIZE` value, by libuv's own rule: unset
 * is 4; otherwise the leading integer (`atoi`), where 0, an empty value or one without digits is 1
 * and anything above 1024 is 1024.
 */
export function threadpoolSizeOf(value: string | undefined): number {
  if (value === undefined) return LIBUV_DEFAULT_THREADPOOL_SIZE;
  const parsed = Number.parseInt(value, 10);
  if (!Number.isFinite(parsed) || parsed === 0) return 1;
  // libuv keeps the count unsigned: a negative one wraps to a huge value, then the cap.
  return parsed < 0 ? LIBUV_MAX_THREADPOOL_SIZE : Math.min(parsed, LIBUV_MAX_THREADPOOL_SIZE);
}

/**
 * A warning for a pool that lets fewer sequences sample at once than this host could (fewer
 * threads than both its cores and its sequences), naming the variable and the size to set; else
 * `undefined`. `threadpool` is the size in effect ({@link threadpoolSizeOf}).
 */
export function threadpoolShortfall(threadpool: number, cores: number, sequences: number): string | undefined {
  const useful = Math.min(Math.floor(cores), sequences);
  if (threadpool >= useful) return undefined;
  return `UV_THREADPOOL_SIZE=${threadpool} lets ${threadpool} of ${sequences} sequences sample their next token at once on this ${cores}-core host; start the worker with UV_THREADPOOL_SIZE=${engineThreadpoolSize(cores)} (gembatch up and the container image set it)`;
}
