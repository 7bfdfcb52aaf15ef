// The console's API client: the key lives in sessionStorage (this tab only, gone when it closes) and
// goes out as a Bearer header on same-origin requests; nothing is fetched from anywhere else.
const KEY = 'gembatch.console.key';
const ROLES = 'gembatch.console.roles';

export function storedKey() {
  return sessionStorage.getItem(KEY);
}

export function storedRoles() {
  try {
    return JSON.parse(sessionStorage.getItem(ROLES) ?? '{}');
  } catch {
    return {};
  }
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(ROLES);
}

/** An API error with its stable code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(path, { method = 'GET', body, key = storedKey(), raw = false } = {}) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined && !(body instanceof FormData)) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined || body instanceof FormData ? body : JSON.stringify(body),
    cache: 'no-store',
  });
  if (!response.ok) {
    const payload = await response.json().catch(() => ({}));
    throw new ApiError(
      response.status,
      payload.error?.code ?? 'GB_ERR_HTTP',
      payload.error?.message ?? `HTTP ${response.status}`,
    );
  }
  return raw ? response : response.json();
}

export const api = {
  get: (path, options) => call(path, options),
  post: (path, body, options) => call(path, { ...options, method: 'POST', body: body ?? {} }),
  blob: async (path) => (await call(path, { raw: true })).blob(),
};

/**
 * Checks a key: a tenant key reads `/v1/batches`, the admin token reads `/admin/fleet` (one key may be
 * neither). Keeps it for this tab only when it is one of them.
 */
export async function signIn(key) {
  const probe = (path) =>
    call(path, { key }).then(
      () => true,
      (error) =>
        error instanceof ApiError && (error.status === 401 || error.status === 404) ? false : Promise.reject(error),
    );
  const [tenant, admin] = await Promise.all([probe('/v1/batches?limit=1'), probe('/admin/fleet')]);
  if (!tenant && !admin)
    throw new ApiError(401, 'GB_ERR_UNAUTHORIZED', 'This key is neither an API key nor the admin token.');
  sessionStorage.setItem(KEY, key);
  sessionStorage.setItem(ROLES, JSON.stringify({ tenant, admin }));
  return { tenant, admin };
}
