/** Options of `childProcessEnv`. */
export interface ChildProcessEnvOptions {
  /** More variable names to pass through when set (e.g. `CUDA_VISIBLE_DEVICES`). Defaults to none. */
  allow?: readonly string[];
  /** Name prefixes to pass through (e.g. `GGML_`, `NODE_LLAMA_CPP_`). Never use one that matches secrets. Defaults to none. */
  allowPrefixes?: readonly string[];
  /** Variables set for the child, over whatever was passed through. Defaults to none. */
  set?: Readonly<Record<string, string>>;
}

/**
 * What every child process may inherit: how to find programs and libraries, where temporary files
 * go, the locale and time zone, and where tesseract's language data lives. Nothing else:
 * `REDIS_URL` (with its password), `HF_TOKEN`, API keys and cloud credentials stay in the parent.
 */
const BASE_ALLOWED: readonly string[] = [
  'PATH',
  'HOME',
  'TMPDIR',
  'TMP',
  'TEMP',
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_CTYPE',
  'LC_NUMERIC',
  'TZ',
  'LD_LIBRARY_PATH',
  'TESSDATA_PREFIX',
  'SYSTEMROOT',
  'WINDIR',
];

/**
 * The minimal environment for a child process (ffmpeg, ffprobe, tesseract, poppler, the
 * extraction processes, the multimodal engine host): an allow-list copy of `source`, never the
 * whole environment. Every spawn in gembatch takes its `env` from here, so a secret added to the
 * parent's environment later cannot leak into a tool that parses hostile files.
 */
export function childProcessEnv(
  options: ChildProcessEnvOptions = {},
  source: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  const allowed = new Set([...BASE_ALLOWED, ...(options.allow ?? [])]);
  const prefixes = options.allowPrefixes ?? [];
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (allowed.has(name) || prefixes.some((prefix) => name.startsWith(prefix))) env[name] = value;
  }
  return { ...env, ...options.set };
}
