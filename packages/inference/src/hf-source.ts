import { GembatchError, errorMessage } from '@gembatch/contracts';
import { fetchFollowingRedirects } from './fetch-following-redirects.ts';

/** A file in a Hugging Face model repository. */
export interface HfFile {
  repo: string;
  file: string;
  revision: string;
}

/** Where Hugging Face is reached and with which token (gated repositories). */
export interface HfAccess {
  /** Base URL (the caller's `HF_ENDPOINT`). Defaults to `https://huggingface.co` (a mirror or a test server can stand in). */
  endpoint?: string;
  /** Access token for gated or private repositories (the caller's `HF_TOKEN`). Never logged. */
  token?: string;
}

const DEFAULT_ENDPOINT = 'https://huggingface.co';

/**
 * Parses `hf:<owner>/<repo>/<path/to/file.gguf>` (optionally `#<revision>`) or
 * `hf:<owner>/<repo>:<quant>` (file picked from the repository listing by `resolveHfQuant`).
 */
export function parseHfUri(uri: string): { repo: string; revision: string } & ({ file: string } | { quant: string }) {
  const match = /^hf:([\w.-]+\/[\w.-]+)(?:\/([^#:]+)|:([\w.-]+))(?:#([\w./-]+))?$/.exec(uri.trim());
  if (!match)
    throw new GembatchError(
      'GB_ERR_CONFIG',
      `not a Hugging Face model URI: ${JSON.stringify(uri)}; use hf:<owner>/<repo>/<file.gguf> or hf:<owner>/<repo>:<quant>`,
    );
  const [, repo, file, quant, revision] = match;
  const base = { repo: repo as string, revision: revision ?? 'main' };
  return file !== undefined ? { ...base, file } : { ...base, quant: quant as string };
}

function hfEndpoint(access: HfAccess = {}): string {
  return (access.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

export function hfHeaders(access: HfAccess = {}): Record<string, string> {
  const token = access.token;
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** The download URL of a repository file. */
export function hfResolveUrl(file: HfFile, access: HfAccess = {}): string {
  const path = file.file.split('/').map(encodeURIComponent).join('/');
  return `${hfEndpoint(access)}/${file.repo}/resolve/${encodeURIComponent(file.revision)}/${path}`;
}

/**
 * Finds the GGUF of a quantization in a repository listing (`hf:<owner>/<repo>:<quant>`): the one
 * whose name carries the quant label, projectors and split files left out.
 */
export async function resolveHfQuant(
  repo: string,
  quant: string,
  revision: string,
  access: HfAccess = {},
  signal?: AbortSignal,
): Promise<HfFile> {
  const url = `${hfEndpoint(access)}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
  let response: Response;
  try {
    response = await fetchFollowingRedirects(url, { headers: hfHeaders(access), ...(signal ? { signal } : {}) });
  } catch (error) {
    throw new GembatchError('GB_ERR_MODEL_LOAD', `could not list ${repo}: ${errorMessage(error)}`, {
      cause: error,
      retryable: true,
    });
  }
  if (!response.ok)
    throw new GembatchError(
      'GB_ERR_MODEL_LOAD',
      `could not list ${repo}: HTTP ${response.status}${response.status === 401 || response.status === 403 ? ' (gated or private: set HF_TOKEN)' : ''}`,
    );
  const listing = (await response.json()) as Array<{ type?: string; path?: string }>;
  const wanted = quant.toLowerCase();
  const matches = listing
    .map((entry) => entry.path ?? '')
    .filter((p) => p.toLowerCase().endsWith('.gguf') && !/mmproj/i.test(p) && !/-\d{5}-of-\d{5}\.gguf$/i.test(p))
    .filter((p) => {
      const name = p.toLowerCase().replace(/\.gguf$/, '');
      return name.endsWith(`-${wanted}`) || name.endsWith(`.${wanted}`) || name.endsWith(`_${wanted}`);
    });
  if (matches.length === 0)
    throw new GembatchError('GB_ERR_MODEL_LOAD', `${repo} has no single-file GGUF for ${quant}`);
  return { repo, file: matches.sort()[0] as string, revision };
}
