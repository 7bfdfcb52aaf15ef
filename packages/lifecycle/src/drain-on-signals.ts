/** The logger calls `drainOnSignals` makes (pino's shape, kept structural so lifecycle stays a leaf). */
export interface DrainLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface DrainOnSignalsOptions {
  log: DrainLogger;
  /** Stops taking work, finishes or hands back what is in flight, and releases resources. */
  close(): Promise<void>;
  /** Exit 1 if `close` has not finished after this long (ms). Defaults to `30000`. */
  timeoutMs?: number;
}

/**
 * The one shutdown path of every service: the first SIGTERM/SIGINT drains (`close`), then exits 0,
 * or 1 if closing failed or ran past `timeoutMs`; a second signal exits 1 at once.
 */
export function drainOnSignals(options: DrainOnSignalsOptions): void {
  const { log } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  let draining = false;
  const drain = (signal: string) => {
    if (draining) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    draining = true;
    log.info({ signal, timeoutMs }, 'draining');
    setTimeout(() => {
      log.error({ ms: timeoutMs }, 'drain timed out; exiting');
      process.exit(1);
    }, timeoutMs).unref();
    options.close().then(
      () => {
        log.info({}, 'stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));
}
