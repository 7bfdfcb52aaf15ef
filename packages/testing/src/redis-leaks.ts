import { setTimeout as delay } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';

/** Poll interval while waiting for closing connections to reach `end`. */
const SETTLE_POLL_MS = 20;
/**
 * How long a connection may take to finish closing after `quit()` resolved: ioredis flips its
 * status to `end` only when the socket's close event arrives, a moment after the reply.
 */
export const DEFAULT_SETTLE_MS = 2_000;

/** An ioredis connection a test opened, with where it was opened (for the failure message). */
export interface TrackedRedis {
  readonly connection: Redis;
  /** Monotonic number, so a check can look only at connections opened after a point. */
  readonly serial: number;
  /** Stack of the call that opened it. */
  readonly openedAt: string;
}

const tracked = new Set<TrackedRedis>();
let nextSerial = 1;

/** The serial the next tracked connection will get; connections tracked later have a serial ≥ this. */
export function currentTrackingSerial(): number {
  return nextSerial;
}

/**
 * Registers a connection for the leak check: a test fails if a connection it tracked is not
 * closed (status `end`) by the time it finishes. Untracks it once it ends. Returns it.
 */
export function trackRedis<T extends Redis>(connection: T): T {
  const entry: TrackedRedis = { connection, serial: nextSerial++, openedAt: callerStack() };
  tracked.add(entry);
  connection.once('end', () => tracked.delete(entry));
  return connection;
}

export interface OpenTestRedisOptions {
  /** Name shown in `CLIENT LIST`. Defaults to `gembatch-test`. */
  name?: string;
  /**
   * `true` for connections BullMQ workers or blocking commands use (`maxRetriesPerRequest: null`).
   * Defaults to `false` (commands fail after 2 retries, so a broken test fails fast).
   */
  blocking?: boolean;
  /** More ioredis options, applied last. Defaults to none. */
  redisOptions?: RedisOptions;
}

/** Opens a tracked ioredis connection to `url`; the test must `quit()` it (or use `closeAfterTest`). */
export function openTestRedis(url: string, options: OpenTestRedisOptions = {}): Redis {
  return trackRedis(
    new Redis(url, {
      connectionName: options.name ?? 'gembatch-test',
      maxRetriesPerRequest: options.blocking ? null : 2,
      ...options.redisOptions,
    }),
  );
}

/**
 * Tracked connections that are not closed (status other than `end`), optionally only those
 * tracked from `sinceSerial` on. Pure: looks, closes nothing.
 *
 * @param sinceSerial Only connections tracked from this serial on. Defaults to `0` (all).
 * @param entries Connections to look at. Defaults to every tracked connection.
 */
export function findOpenConnections(sinceSerial = 0, entries: Iterable<TrackedRedis> = tracked): TrackedRedis[] {
  return [...entries].filter((entry) => entry.serial >= sinceSerial && entry.connection.status !== 'end');
}

/**
 * Waits up to `settleMs` for connections that are closing to reach `end`, then returns those
 * still open. Use it after a test: `quit()` resolves a moment before the status turns `end`.
 *
 * @param sinceSerial Only connections tracked from this serial on (see `currentTrackingSerial`). Defaults to `0` (all).
 * @param settleMs Longest wait for closing connections. Defaults to `DEFAULT_SETTLE_MS` (2 s).
 * @param entries Connections to look at. Defaults to every tracked connection.
 */
export async function findLeakedConnections(
  sinceSerial = 0,
  settleMs = DEFAULT_SETTLE_MS,
  entries: Iterable<TrackedRedis> = tracked,
): Promise<TrackedRedis[]> {
  const deadline = Date.now() + settleMs;
  let open = findOpenConnections(sinceSerial, entries);
  // A leak costs the failing test up to `settleMs`; a clean test returns on the first look or
  // as soon as its last `quit()` lands.
  while (open.length > 0 && Date.now() < deadline) {
    await delay(SETTLE_POLL_MS);
    open = findOpenConnections(sinceSerial, entries);
  }
  return open;
}

/** Force-closes the given connections (so one leak does not hang the run) and untracks them. */
export function disconnectAll(entries: Iterable<TrackedRedis>): void {
  for (const entry of entries) {
    entry.connection.disconnect();
    tracked.delete(entry);
  }
}

/** A human-readable report of leaked connections: status, name and where each was opened. */
export function describeLeaks(leaks: readonly TrackedRedis[]): string {
  return leaks
    .map(
      (leak) =>
        `  - ioredis connection "${leak.connection.options.connectionName ?? '(unnamed)'}" still ${leak.connection.status}, opened at:\n${indent(leak.openedAt)}`,
    )
    .join('\n');
}

function callerStack(): string {
  const lines = (new Error().stack ?? '').split('\n').slice(1);
  const outside = lines.filter(
    (line) =>
      !line.includes('/packages/testing/src/') && !line.includes('node:internal') && !line.includes('/node_modules/'),
  );
  return (outside.length > 0 ? outside : lines).slice(0, 3).join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `      ${line.trim()}`)
    .join('\n');
}
