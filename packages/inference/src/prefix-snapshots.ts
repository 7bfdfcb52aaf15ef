import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readdir, rm, statfs, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Shortest shared prefix worth a snapshot: below this, evaluating it costs about what loading does. */
export const MIN_SNAPSHOT_TOKENS = 32;
/** Snapshots kept (least recently used dropped first). */
const DEFAULT_MAX_SNAPSHOTS = 8;
/** Recent prompts compared with a new one to spot a shared prefix. */
const DEFAULT_RECENT_PROMPTS = 32;
/** Saves that may fail in a row before no new snapshot is claimed (a full or read-only directory). */
const MAX_SAVE_FAILURES = 3;
/** Free space `/dev/shm` needs to be the default (Docker gives containers 64 MiB unless `shm_size` says more). */
const MIN_SHM_FREE_BYTES = 1024 ** 3;
/** Directory under the base that holds one subdirectory per engine process. */
const ROOT_NAME = 'gembatch-prefix-snapshots';

/** A shared prompt prefix whose KV state is (being) saved to a file. */
export interface PrefixSnapshot {
  readonly tokens: readonly number[];
  /** The state file, once saved; `undefined` when saving failed (callers evaluate the prefix themselves). */
  readonly file: Promise<string | undefined>;
}

/**
 * How a claimed snapshot ended: `saved`, its save `failed` (counts toward turning snapshots off),
 * or `abandoned` (the job ended before saving: cancelled, failed, the engine closing).
 */
type SnapshotOutcome = 'saved' | 'failed' | 'abandoned';

/** A snapshot being written by the job that evaluates its prefix; `finish` must be called (later calls are ignored). */
export interface PendingSnapshot {
  readonly snapshot: PrefixSnapshot;
  readonly file: string;
  finish(outcome: SnapshotOutcome): void;
}

interface Entry extends PrefixSnapshot {
  readonly path: string;
}

export interface PrefixSnapshotsOptions {
  /** Directory for the state files. Defaults to `/dev/shm` (memory) where it has 1 GiB free, else the OS temp dir. */
  baseDir?: string;
  maxSnapshots?: number;
  recentPrompts?: number;
}

/**
 * Saved KV states of prompt prefixes that several jobs share (system prompt, instruction, schema),
 * so a sequence that does not hold one loads it (a memory copy) instead of evaluating it. Prefix
 * reuse alone evaluates a shared instruction once per sequence; with snapshots it is evaluated once
 * per engine, which matters when many sequences start at once or tasks take turns on a sequence.
 *
 * Where a prefix is shared is learned from the prompts themselves: a new prompt that starts with
 * the same {@link MIN_SNAPSHOT_TOKENS}+ tokens as a recent one marks that common start as a
 * prefix worth a snapshot. The job that finds it evaluates the prefix, saves the state and
 * publishes it; jobs arriving meanwhile wait for the file rather than evaluate the prefix too.
 *
 * The files hold KV state and token ids of the shared part only (what two different prompts have
 * in common), in a 0700 directory of this process, removed by {@link close}; a directory left by a
 * process that died is removed by the next engine that starts.
 */
export class PrefixSnapshots {
  readonly #dir: string;
  readonly #maxSnapshots: number;
  readonly #recentLimit: number;
  /** Least recently used first. */
  readonly #entries: Entry[] = [];
  readonly #recent: (readonly number[])[] = [];
  #next = 0;
  #closed = false;
  #saveFailures = 0;

  private constructor(dir: string, maxSnapshots: number, recentLimit: number) {
    this.#dir = dir;
    this.#maxSnapshots = maxSnapshots;
    this.#recentLimit = recentLimit;
  }

  static async create(options: PrefixSnapshotsOptions = {}): Promise<PrefixSnapshots> {
    const root = path.join(options.baseDir ?? (await defaultBaseDir()), ROOT_NAME);
    await mkdir(root, { recursive: true, mode: 0o700 });
    await removeOrphans(root);
    const dir = await mkdtemp(path.join(root, `${process.pid}-`));
    return new PrefixSnapshots(
      dir,
      options.maxSnapshots ?? DEFAULT_MAX_SNAPSHOTS,
      options.recentPrompts ?? DEFAULT_RECENT_PROMPTS,
    );
  }

  /** The directory holding this engine's state files. */
  get dir(): string {
    return this.#dir;
  }

  /**
   * The longest snapshot that `tokens` starts with in full, longer than `longerThan` tokens and
   * shorter than `tokens` (the last prompt token is always evaluated: its logits give the first
   * generated token).
   */
  find(tokens: readonly number[], longerThan: number): PrefixSnapshot | undefined {
    const best = this.#longest(tokens, longerThan);
    if (best) {
      this.#entries.splice(this.#entries.indexOf(best), 1);
      this.#entries.push(best);
    }
    return best;
  }

  #longest(tokens: readonly number[], longerThan: number): Entry | undefined {
    let best: Entry | undefined;
    for (const entry of this.#entries) {
      const length = entry.tokens.length;
      if (length <= longerThan || length >= tokens.length || (best && best.tokens.length >= length)) continue;
      if (startsWith(tokens, entry.tokens)) best = entry;
    }
    return best;
  }

  /**
   * Remembers `tokens` as a recent prompt and, when it shares at least {@link MIN_SNAPSHOT_TOKENS}
   * more starting tokens with an earlier one than the `longerThan` its sequence holds, returns a
   * pending snapshot of that shared start for the caller to evaluate and save. Call after
   * {@link find}: a shorter snapshot (the system prompt of many tasks, say) is loaded first, and
   * the longer start that this task's prompts share is claimed on top of it.
   */
  claim(tokens: readonly number[], longerThan: number): PendingSnapshot | undefined {
    let shared = 0;
    for (const recent of this.#recent) shared = Math.max(shared, sharedPrefixLength(recent, tokens));
    this.#recent.push(tokens);
    if (this.#recent.length > this.#recentLimit) this.#recent.shift();
    shared = Math.min(shared, tokens.length - 1);
    if (this.#closed || this.disabled || shared - longerThan < MIN_SNAPSHOT_TOKENS) return undefined;
    // Another job claimed a snapshot this prompt could load since the caller looked: load-or-evaluate is the caller's.
    if (this.#longest(tokens, longerThan)) return undefined;

    const file = path.join(this.#dir, `${this.#next++}.state`);
    let settle: (value: string | undefined) => void = () => undefined;
    const entry: Entry = {
      tokens: tokens.slice(0, shared),
      path: file,
      file: new Promise<string | undefined>((resolve) => {
        settle = resolve;
      }),
    };
    this.#entries.push(entry);
    let finished = false;
    return {
      snapshot: entry,
      file,
      finish: (outcome) => {
        if (finished) return;
        finished = true;
        if (outcome === 'saved' && !this.#closed) {
          this.#saveFailures = 0;
          settle(file);
          this.#evict();
          return;
        }
        if (outcome === 'failed') this.#saveFailures++;
        this.#drop(entry);
        settle(undefined);
      },
    };
  }

  /** Forgets a snapshot whose file turned out unusable (the caller evaluates instead). */
  discard(snapshot: PrefixSnapshot): void {
    const entry = this.#entries.find((e) => e === snapshot);
    if (entry) this.#drop(entry);
  }

  /** No new snapshots are claimed: the last {@link MAX_SAVE_FAILURES} saves failed. */
  get disabled(): boolean {
    return this.#saveFailures >= MAX_SAVE_FAILURES;
  }

  /** Snapshots kept (saved or being saved). */
  get size(): number {
    return this.#entries.length;
  }

  /** Removes every state file and the directory. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#entries.length = 0;
    this.#recent.length = 0;
    await rm(this.#dir, { recursive: true, force: true });
  }

  #evict(): void {
    while (this.#entries.length > this.#maxSnapshots) {
      const oldest = this.#entries[0];
      if (!oldest) return;
      this.#drop(oldest);
    }
  }

  #drop(entry: Entry): void {
    const index = this.#entries.indexOf(entry);
    if (index >= 0) this.#entries.splice(index, 1);
    // Once its writer is done (a failed save may leave part of a file). A job that found this entry
    // before it was dropped and misses the file falls back to evaluating the prefix.
    void entry.file.then(() => unlink(entry.path).catch(() => undefined));
  }
}

function startsWith(tokens: readonly number[], prefix: readonly number[]): boolean {
  for (let i = 0; i < prefix.length; i++) if (tokens[i] !== prefix[i]) return false;
  return true;
}

/** How many tokens `a` and `b` share from the start. */
export function sharedPrefixLength(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length);
  let n = 0;
  while (n < limit && a[n] === b[n]) n++;
  return n;
}

async function defaultBaseDir(): Promise<string> {
  try {
    await access('/dev/shm', constants.W_OK);
    const { bavail, bsize } = await statfs('/dev/shm');
    if (bavail * bsize >= MIN_SHM_FREE_BYTES) return '/dev/shm';
  } catch {
    // No /dev/shm here: the temp dir.
  }
  return os.tmpdir();
}

/** Removes directories of engine processes that no longer run (named `<pid>-<random>`). */
async function removeOrphans(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [])) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    await rm(path.join(root, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
