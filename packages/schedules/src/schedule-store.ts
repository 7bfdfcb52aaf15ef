import type { Redis } from 'ioredis';
import { redisKeys } from '@gembatch/contracts';
import type { KnownHash, ScannedFile } from './scan-folder.ts';
import type { ScheduleRecord, ScheduleRunView } from './schedule-types.ts';

/** Runs kept per schedule (older ones are dropped from the listing and expire). */
const MAX_RUNS_KEPT = 500;
/** Run records live this long (s): 30 days, longer than a monthly schedule's interval. */
const RUN_TTL_SECONDS = 30 * 24 * 60 * 60;

/** KEYS[1] schedule hash, KEYS[2..] written keys; ARGV[1] JSON list of [command, key index, args...]. */
const GUARDED_WRITE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, op in ipairs(cjson.decode(ARGV[1])) do
  local args = {}
  for i = 3, #op do args[#args + 1] = op[i] end
  redis.call(op[1], KEYS[op[2]], unpack(args))
end
return 1`;

/** Releases a schedule's active-run marker only if this run holds it (compare and delete). */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * Schedules, their runs, their content-hash ledgers and the one-run-at-a-time marker, in Redis.
 * Keys are spelled in `@gembatch/contracts` (`redisKeys.schedule*`).
 */
export class ScheduleStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async put(record: ScheduleRecord): Promise<void> {
    await this.#redis
      .multi()
      .hset(redisKeys.schedule(this.#prefix, record.id), { tenant: record.tenant, record: JSON.stringify(record) })
      .zadd(redisKeys.tenantSchedules(this.#prefix, record.tenant), record.created_at * 1000, record.id)
      .exec();
  }

  /** The schedule, or undefined when it does not exist or belongs to another tenant. */
  async get(tenant: string, id: string): Promise<ScheduleRecord | undefined> {
    const raw = await this.#redis.hget(redisKeys.schedule(this.#prefix, id), 'record');
    if (!raw) return undefined;
    const record = JSON.parse(raw) as ScheduleRecord;
    return record.tenant === tenant ? record : undefined;
  }

  /** The tenant's schedule ids, newest first. */
  async ids(tenant: string, limit: number): Promise<string[]> {
    return this.#redis.zrevrange(redisKeys.tenantSchedules(this.#prefix, tenant), 0, limit - 1);
  }

  /** Deletes the schedule with its runs and ledger. */
  async delete(record: ScheduleRecord): Promise<void> {
    const runIds = await this.#redis.zrange(redisKeys.scheduleRuns(this.#prefix, record.id), 0, -1);
    const multi = this.#redis.multi();
    for (const runId of runIds)
      multi.del(
        redisKeys.scheduleRun(this.#prefix, record.id, runId),
        redisKeys.scheduleRunFiles(this.#prefix, record.id, runId),
      );
    await multi
      .del(
        redisKeys.schedule(this.#prefix, record.id),
        redisKeys.scheduleRuns(this.#prefix, record.id),
        redisKeys.scheduleLedger(this.#prefix, record.id),
        redisKeys.scheduleActiveRun(this.#prefix, record.id),
        redisKeys.scheduleHashes(this.#prefix, record.id),
      )
      .zrem(redisKeys.tenantSchedules(this.#prefix, record.tenant), record.id)
      .exec();
  }

  /** Stores a run; a no-op once the schedule is deleted (a run that was going on when its tenant was purged). */
  async putRun(run: ScheduleRunView): Promise<void> {
    const runs = redisKeys.scheduleRuns(this.#prefix, run.schedule_id);
    const key = redisKeys.scheduleRun(this.#prefix, run.schedule_id, run.id);
    await this.#ifExists(run.schedule_id, [
      ['SET', key, JSON.stringify(run), 'EX', String(RUN_TTL_SECONDS)],
      ['ZADD', runs, 'NX', String(Date.now()), run.id],
      ['ZREMRANGEBYRANK', runs, '0', String(-(MAX_RUNS_KEPT + 1))],
    ]);
  }

  /** Runs `writes` atomically only while the schedule's record exists, so a deleted schedule's keys never come back. */
  async #ifExists(
    scheduleId: string,
    writes: ReadonlyArray<[command: string, key: string, ...args: string[]]>,
  ): Promise<boolean> {
    const keys = [redisKeys.schedule(this.#prefix, scheduleId), ...new Set(writes.map(([, key]) => key))];
    const ops = writes.map(([command, key, ...args]) => [command, keys.indexOf(key) + 1, ...args]);
    return ((await this.#redis.eval(GUARDED_WRITE_SCRIPT, keys.length, ...keys, JSON.stringify(ops))) as number) === 1;
  }

  async getRun(scheduleId: string, runId: string): Promise<ScheduleRunView | undefined> {
    const raw = await this.#redis.get(redisKeys.scheduleRun(this.#prefix, scheduleId, runId));
    return raw ? (JSON.parse(raw) as ScheduleRunView) : undefined;
  }

  /** The schedule's runs, newest first. */
  async runs(scheduleId: string, limit: number): Promise<ScheduleRunView[]> {
    const ids = await this.#redis.zrevrange(redisKeys.scheduleRuns(this.#prefix, scheduleId), 0, limit - 1);
    if (ids.length === 0) return [];
    const raws = await this.#redis.mget(ids.map((id) => redisKeys.scheduleRun(this.#prefix, scheduleId, id)));
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as ScheduleRunView);
  }

  /**
   * Takes the schedule's one-run-at-a-time marker for `runId`. True when it is ours (also when
   * this same run already held it: a retried run job resumes).
   */
  async acquire(scheduleId: string, runId: string): Promise<boolean> {
    const key = redisKeys.scheduleActiveRun(this.#prefix, scheduleId);
    // Deleted meanwhile: the marker is not taken (returns false: the run is not started).
    if (!(await this.#ifExists(scheduleId, [['SET', key, runId, 'NX']]))) return false;
    return (await this.#redis.get(key)) === runId;
  }

  async release(scheduleId: string, runId: string): Promise<void> {
    await this.#redis.eval(RELEASE_SCRIPT, 1, redisKeys.scheduleActiveRun(this.#prefix, scheduleId), runId);
  }

  /** The run holding the marker, if any. */
  async activeRun(scheduleId: string): Promise<string | null> {
    return this.#redis.get(redisKeys.scheduleActiveRun(this.#prefix, scheduleId));
  }

  /** Records which content each request of a run carries (custom_id → sha256), for the ledger once results are written. */
  async putRunFiles(
    scheduleId: string,
    runId: string,
    files: ReadonlyArray<{ customId: string; sha256: string }>,
  ): Promise<void> {
    const key = redisKeys.scheduleRunFiles(this.#prefix, scheduleId, runId);
    // Why 1,000 per HSET: bounded command size for runs of many files.
    for (let start = 0; start < files.length; start += 1_000) {
      const slice = files.slice(start, start + 1_000).flatMap((f) => [f.customId, f.sha256]);
      await this.#ifExists(scheduleId, [
        ['HSET', key, ...slice],
        ['EXPIRE', key, String(RUN_TTL_SECONDS)],
      ]);
    }
  }

  /** The sha256 of each request's input, in the order of `customIds` (null when unknown). */
  async runFileHashes(scheduleId: string, runId: string, customIds: readonly string[]): Promise<Array<string | null>> {
    if (customIds.length === 0) return [];
    return this.#redis.hmget(redisKeys.scheduleRunFiles(this.#prefix, scheduleId, runId), ...customIds);
  }

  /** The hash cache of the schedule's source files (see `redisKeys.scheduleHashes`). */
  async knownHashes(scheduleId: string): Promise<KnownHash> {
    const entries = await this.#redis.hgetall(redisKeys.scheduleHashes(this.#prefix, scheduleId));
    return (relative, bytes, mtimeMs) => {
      const entry = entries[relative];
      if (!entry) return undefined;
      const [size, mtime, sha256] = entry.split(':');
      return size === String(bytes) && mtime === String(mtimeMs) ? sha256 : undefined;
    };
  }

  /** Replaces the hash cache with this scan's files (files gone from the folder drop out). */
  async saveHashes(
    scheduleId: string,
    files: ReadonlyArray<Pick<ScannedFile, 'relative' | 'bytes' | 'mtimeMs' | 'sha256'>>,
  ): Promise<void> {
    const key = redisKeys.scheduleHashes(this.#prefix, scheduleId);
    const writes: Array<[string, string, ...string[]]> = [['DEL', key]];
    // Why 1,000 per HSET: bounded command size for large folders (one script still).
    for (let start = 0; start < files.length; start += 1_000)
      writes.push([
        'HSET',
        key,
        ...files.slice(start, start + 1_000).flatMap((f) => [f.relative, `${f.bytes}:${f.mtimeMs}:${f.sha256}`]),
      ]);
    await this.#ifExists(scheduleId, writes);
  }

  /** Which of `hashes` the schedule's ledger has seen, in order. */
  async seen(scheduleId: string, hashes: readonly string[]): Promise<boolean[]> {
    if (hashes.length === 0) return [];
    const flags = await this.#redis.smismember(redisKeys.scheduleLedger(this.#prefix, scheduleId), ...hashes);
    return flags.map((flag) => flag === 1);
  }

  /** Marks contents as processed. */
  async remember(scheduleId: string, hashes: readonly string[]): Promise<void> {
    if (hashes.length > 0)
      await this.#ifExists(scheduleId, [['SADD', redisKeys.scheduleLedger(this.#prefix, scheduleId), ...hashes]]);
  }

  async ledgerSize(scheduleId: string): Promise<number> {
    return this.#redis.scard(redisKeys.scheduleLedger(this.#prefix, scheduleId));
  }
}
