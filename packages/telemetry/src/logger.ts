import { pino, type Logger, type DestinationStream, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/**
 * Field names whose values are document content, prompts, outputs or secrets. pino replaces them
 * with `[redacted]` at any of the first three levels of nesting, so a careless
 * `log.info({job})` cannot leak a document.
 */
export const REDACTED_FIELDS = [
  'text',
  'prompt',
  'instruction',
  'output',
  'outputs',
  'result',
  'content',
  'document',
  'messages',
  'password',
  'authorization',
  'apiKey',
  'api_key',
  'x-api-key',
  'json_schema',
  'options',
  'data',
  'body',
] as const;

const REDACT_PATHS = REDACTED_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]).concat([
  'req.headers.authorization',
  'req.headers["x-api-key"]',
]);

export interface CreateLoggerOptions {
  /** Service name, logged as `service` on every line. */
  service: string;
  /** pino level. Defaults to `info`. */
  level?: string;
  /** Where lines go. Defaults to stdout (pretty when stdout is a TTY and `pretty` is not false). */
  destination?: DestinationStream;
  /** Pretty-print for humans. Defaults to `process.stdout.isTTY`. */
  pretty?: boolean;
}

/** The one way to make a logger: JSON lines, ids and timings in fields, content redacted. */
export function createLogger(options: CreateLoggerOptions): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: options.service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (options.destination) return pino(config, options.destination);
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY);
  if (pretty)
    return pino({
      ...config,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' },
      },
    });
  return pino(config);
}
