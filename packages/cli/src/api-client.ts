import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import type { ErrorBody, JobResultDocument, JobView } from '@gembatch/contracts';

/** The OpenAI batch object (the fields the CLI reads; the server sends more). */
export interface BatchObject {
  id: string;
  object: 'batch';
  endpoint: string;
  status: string;
  input_file_id: string;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  request_counts: { total: number; completed: number; failed: number };
  errors: { data: Array<{ code: string; message: string; line: number | null }> } | null;
  metadata: Record<string, string> | null;
  /** Tokens so far, when the server reports them (OpenAI's `usage` on batch objects). */
  usage?: { input_tokens?: number; output_tokens?: number; total_tokens?: number } | null;
}

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

  /** Uploads a file (streamed from disk); `purpose` as in OpenAI's Files API (`batch`, `user_data`). */
  async uploadFile(path: string, purpose?: string): Promise<{ id: string; bytes: number; sha256: string }> {
    const form = new FormData();
    if (purpose) form.append('purpose', purpose);
    form.append('file', await openAsBlob(path), basename(path));
    return this.#request('POST', '/v1/files', form);
  }

  /** Uploads bytes held in memory under `filename`. */
  async uploadBytes(
    bytes: Uint8Array,
    filename: string,
    purpose?: string,
  ): Promise<{ id: string; bytes: number; sha256: string }> {
    const form = new FormData();
    if (purpose) form.append('purpose', purpose);
    form.append('file', new Blob([bytes]), filename);
    return this.#request('POST', '/v1/files', form);
  }

  /** The file record, or undefined when the server does not know the id (404). */
  async findFile(id: string): Promise<{ id: string; bytes: number; sha256?: string } | undefined> {
    try {
      return await this.#request('GET', `/v1/files/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** `POST /v1/batches`; an `idempotencyKey` makes a repeat return the first batch. */
  async createBatch(body: Record<string, unknown>, idempotencyKey?: string): Promise<BatchObject> {
    return this.#request('POST', '/v1/batches', JSON.stringify(body), {
      'content-type': 'application/json',
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
    });
  }

  async getBatch(id: string): Promise<BatchObject> {
    return this.#request('GET', `/v1/batches/${encodeURIComponent(id)}`);
  }

  async listBatches(
    query: { after?: string; limit?: number } = {},
  ): Promise<{ data: BatchObject[]; has_more: boolean; last_id: string | null }> {
    const params = new URLSearchParams();
    if (query.after) params.set('after', query.after);
    if (query.limit) params.set('limit', String(query.limit));
    return this.#request('GET', `/v1/batches${params.size > 0 ? `?${params.toString()}` : ''}`);
  }

  async cancelBatch(id: string): Promise<BatchObject> {
    return this.#request('POST', `/v1/batches/${encodeURIComponent(id)}/cancel`);
  }

  /** The batch's output or error lines so far (`/v1/batches/:id/output|errors`), streamed line by line. */
  async *batchLines(id: string, kind: 'output' | 'errors'): AsyncGenerator<string> {
    const response = await fetch(`${this.#base}/v1/batches/${encodeURIComponent(id)}/${kind}`, {
      headers: this.#headers,
      signal: AbortSignal.timeout(this.#timeoutMs * 10),
    });
    if (!response.ok || !response.body) {
      const text = await response.text();
      const json = text ? (JSON.parse(text) as { error?: ErrorBody }) : undefined;
      throw new ApiError(response.status, json?.error, `GET /v1/batches/${id}/${kind}: HTTP ${response.status}`);
    }
    let rest = '';
    for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let newline = rest.indexOf('\n');
      while (newline >= 0) {
        const line = rest.slice(0, newline);
        rest = rest.slice(newline + 1);
        if (line.trim()) yield line;
        newline = rest.indexOf('\n');
      }
    }
    if (rest.trim()) yield rest;
  }

  /** Any JSON route (schedules and others): `method path [body]`. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return body === undefined
      ? this.#request(method, path)
      : this.#request(method, path, JSON.stringify(body), { 'content-type': 'application/json' });
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

  async #request<T>(
    method: string,
    path: string,
    body?: RequestInit['body'],
    headers: Record<string, string> = {},
  ): Promise<T> {
    const response = await fetch(`${this.#base}${path}`, {
      method,
      headers: { ...this.#headers, ...headers },
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    const text = await response.text();
    const json = text.length > 0 ? (JSON.parse(text) as unknown) : undefined;
    if (!response.ok)
      throw new ApiError(
        response.status,
        (json as { error?: ErrorBody } | undefined)?.error,
        `${method} ${path}: HTTP ${response.status}`,
      );
    return json as T;
  }
}
