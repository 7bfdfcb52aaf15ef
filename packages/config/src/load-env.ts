import { z } from 'zod';

/** Thrown by `loadEnv`; `problems` holds one line per bad variable, each naming it. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Parses environment variables with a zod object schema whose keys are the variable names.
 * Empty strings count as unset (so `FOO=` falls back to the default). Returns a frozen object;
 * on failure throws a `ConfigError` listing every problem with its variable name.
 */
export function loadEnv<Schema extends z.ZodObject>(
  schema: Schema,
  source: Record<string, string | undefined> = process.env,
): Readonly<z.output<Schema>> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = source[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    // Values are not echoed: a variable may hold a secret (API keys, passwords in URLs).
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`));
  }
  return Object.freeze(parsed.data);
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** A real string-to-boolean parser: true/false, 1/0, yes/no, on/off (case-insensitive); anything else is an error. */
export const envBool = z.string().transform((value, ctx) => {
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  ctx.addIssue({ code: 'custom', message: 'must be one of true/false, 1/0, yes/no, on/off' });
  return z.NEVER;
});

/** A base-10 integer within bounds. */
export const envInt = (min: number, max: number = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** A byte size: `1048576`, `512MiB`, `24GB`, `1.5g` (binary units). */
export const envBytes = z.string().transform((value, ctx) => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = BYTE_UNITS[(match?.[2] ?? '').toLowerCase()];
  if (!match || unit === undefined) {
    ctx.addIssue({ code: 'custom', message: 'must be a byte size such as 1048576, 512MiB or 24GB' });
    return z.NEVER;
  }
  return Math.round(Number(match[1]) * unit);
});

/** A comma-separated list of non-empty strings. */
export const envList = z.string().transform((value) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

/** Formats a `ConfigError` for stderr and exits 1; rethrows anything else. */
export function exitOnConfigError(error: unknown, service: string): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`${service}: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

/** `loadEnv` for a service's entry point: a `ConfigError` goes to stderr under the service's name and exits 1. */
export function loadEnvOrExit<Schema extends z.ZodObject>(schema: Schema, service: string): Readonly<z.output<Schema>> {
  try {
    return loadEnv(schema);
  } catch (error) {
    exitOnConfigError(error, service);
  }
}
