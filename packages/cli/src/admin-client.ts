import type { ErrorBody } from '@gembatch/contracts';
import { ApiError } from './api-client.ts';

/** A stored API key as the admin routes list it (never the key itself). */
export interface ApiKeyInfo {
  id: string;
  tenant: string;
  created_at: string;
}

export interface AdminClientOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** `GEMBATCH_ADMIN_TOKEN` of that API, sent as `Authorization: Bearer <token>`. */
  token: string;
  /** Per-request timeout (ms). Defaults to `30000`. */
  timeoutMs?: number;
}

/** A thin client of the API's operator routes under `/admin` (what `gembatch keys` uses). */
export class AdminClient {
  readonly #base: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(options: AdminClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Creates an API key for `tenant`; the answer holds the plain key, shown this once. */
  createKey(tenant: string): Promise<ApiKeyInfo & { key: string }> {
    return this.request('POST', '/admin/keys', { tenant });
  }

  /** Lists stored keys (ids and tenants), optionally one tenant's. */
  async listKeys(tenant?: string): Promise<ApiKeyInfo[]> {
    const query = tenant ? `?tenant=${encodeURIComponent(tenant)}` : '';
    return (await this.request<{ data: ApiKeyInfo[] }>('GET', `/admin/keys${query}`)).data;
  }

  /** Revokes a key by id; it is refused from the next request on. */
  revokeKey(id: string): Promise<ApiKeyInfo & { revoked: true }> {
    return this.request('DELETE', `/admin/keys/${encodeURIComponent(id)}`);
  }

  /** Any admin route: JSON in, JSON out; an error answer throws `ApiError` with its code. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.#base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.#token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!response.ok)
      throw new ApiError(
        response.status,
        (json as { error?: ErrorBody } | undefined)?.error,
        `${method} ${path}: HTTP ${response.status}`,
      );
    return json as T;
  }
}
