import { GembatchError } from '@gembatch/contracts';

/**
 * Redirects followed before giving up: the Hub answers a file with one redirect to its CDN, and a
 * renamed repository adds one more; 10 leaves room without letting a loop run on.
 */
const MAX_REDIRECTS = 10;
/** Request headers that carry credentials; none may reach another origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface RedirectSafeInit {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** `headers` without credentials (Authorization, Proxy-Authorization, Cookie), whatever their case. */
function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase())));
}

/** Whether a response is a redirect that says where to go. */
export function isRedirect(response: Response): boolean {
  return REDIRECT_STATUSES.has(response.status) && response.headers.get('location') !== null;
}

/**
 * The next hop of a redirect: its absolute URL, and the headers to send there. Credentials are
 * dropped as soon as the origin (scheme, host, port) changes, so a Hugging Face token never goes to
 * the CDN or any other host a redirect names; once dropped they stay dropped.
 */
export function redirectTarget(
  response: Response,
  from: string,
  headers: Record<string, string>,
): { url: string; headers: Record<string, string> } {
  const url = new URL(response.headers.get('location') ?? '', from);
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new GembatchError('GB_ERR_MODEL_LOAD', `${new URL(from).host} redirected to a ${url.protocol} URL`);
  return { url: url.toString(), headers: url.origin === new URL(from).origin ? headers : withoutCredentials(headers) };
}

/**
 * `fetch` that follows redirects itself (at most 10) instead of leaving it to the runtime, so that
 * credentials never follow a redirect to another origin (see `redirectTarget`). A 303 turns a GET
 * into a GET (and a HEAD stays a HEAD); bodies are not supported (downloads and listings only).
 */
export async function fetchFollowingRedirects(url: string, init: RedirectSafeInit = {}): Promise<Response> {
  let current = url;
  let headers = { ...init.headers };
  for (let hop = 0; ; hop++) {
    const response = await fetch(current, {
      method: init.method ?? 'GET',
      headers,
      redirect: 'manual',
      ...(init.signal ? { signal: init.signal } : {}),
    });
    if (!isRedirect(response)) return response;
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS)
      throw new GembatchError('GB_ERR_MODEL_LOAD', `${new URL(url).host}: more than ${MAX_REDIRECTS} redirects`, {
        retryable: true,
      });
    ({ url: current, headers } = redirectTarget(response, current, headers));
  }
}
