import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import type { ErrorBody, JobResultDocument, JobView } from '@gembatch/contracts';

/** An error answer from the API, with its stable code. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, body: ErrorBody | undefined, fallback: string) {
    super(body?.message ?? fallback);
    this.name = 'ApiError';
    this.status = status;
    this.code = body?.code ?? 'GB_ERR_INTERNAL';
  }
}

export interface ApiClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  apiKey?: string;
  /** Per-request timeout (ms). Defaults to `60000`. */
  timeoutMs?: number;
}

/** A thin client of the gembatch HTTP API (what the CLI and scripts use). */
export class ApiClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;

  constructor(options: ApiClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#headers = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** Uploads a file (streamed from disk). */
  async uploadFile(path: string): Promise<{ id: string; bytes: number; sha256: string }> {
    const form = new FormData();
    form.append('file', await openAsBlob(path), basename(path));
    return this.#request('POST', '/v1/files', form);
  }

  async createJob(body: Record<string, unknown>): Promise<JobView> {
    return this.#request('POST', '/v1/jobs', JSON.stringify(body), { 'content-type': 'application/json' });
  }

  async getJob(id: string): Promise<JobView> {
    return this.#request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }

  async getResult(id: string): Promise<JobResultDocument> {
    return this.#request('GET', `/v1/jobs/${encodeURIComponent(id)}/result`);
  }

  /** true when `/readyz` answers 200. */
  async ready(): Promise<boolean> {
    try {
      const response = await fetch(`${this.#base}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  async #request<T>(method: string, path: string, body?: RequestInit['body'], headers: Record<string, string> = {}): Promise<T> {
    const response = await fetch(`${this.#base}${path}`, { method, headers: { ...this.#headers, ...headers }, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(this.#timeoutMs) });
    const text = await response.text();
    const json = text.length > 0 ? (JSON.parse(text) as unknown) : undefined;
    if (!response.ok) throw new ApiError(response.status, (json as { error?: ErrorBody } | undefined)?.error, `${method} ${path}: HTTP ${response.status}`);
    return json as T;
  }
}
