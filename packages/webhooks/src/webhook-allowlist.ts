import { GembatchError } from '@gembatch/contracts';

/** One allowlist entry: an origin (scheme, host, port) and a path prefix. */
interface AllowedPrefix {
  origin: string;
  path: string;
}

/**
 * The operator's list of webhook destinations (`GEMBATCH_WEBHOOK_ALLOWED_URLS`). An entry is a URL
 * prefix: `https://hooks.example.com` allows every path on that origin, `https://example.com/hooks/`
 * only paths under `/hooks/`. Scheme, host and port must match exactly; no wildcard, no credentials,
 * no query. Outbound calls go only to URLs this accepts, so a tenant cannot make the service call
 * an arbitrary host (SSRF).
 */
export class WebhookAllowlist {
  readonly #entries: readonly AllowedPrefix[];

  private constructor(entries: AllowedPrefix[]) {
    this.#entries = entries;
  }

  /** An empty allowlist: webhooks are off and every URL is refused. */
  static readonly none = new WebhookAllowlist([]);

  /**
   * Parses the entries; throws an `Error` naming the first bad one (by position, not value, since
   * an entry may carry a token in its path). Use it at start-up so a typo stops the service.
   */
  static parse(entries: readonly string[]): WebhookAllowlist {
    const parsed = entries.map((entry, index) => {
      let url: URL;
      try {
        url = new URL(entry);
      } catch {
        throw new Error(`entry ${index + 1} is not a URL`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:')
        throw new Error(`entry ${index + 1} must be an http:// or https:// URL`);
      if (url.username || url.password) throw new Error(`entry ${index + 1} must not carry credentials`);
      if (url.search || url.hash) throw new Error(`entry ${index + 1} must not have a query or fragment`);
      return { origin: url.origin, path: url.pathname };
    });
    return new WebhookAllowlist(parsed);
  }

  /** Whether any destination is configured. */
  get enabled(): boolean {
    return this.#entries.length > 0;
  }

  /** Whether `candidate` may be called: same origin as an entry and a path under the entry's path. */
  allows(candidate: string): boolean {
    let url: URL;
    try {
      url = new URL(candidate);
    } catch {
      return false;
    }
    if (url.username || url.password) return false;
    return this.#entries.some((entry) => {
      if (url.origin !== entry.origin) return false;
      if (entry.path === '/' || url.pathname === entry.path) return true;
      return url.pathname.startsWith(entry.path.endsWith('/') ? entry.path : `${entry.path}/`);
    });
  }

  /** Throws `GB_ERR_WEBHOOK_NOT_ALLOWED` (400) unless `url` is allowed. The URL is not echoed (it may hold a token). */
  assertAllowed(url: string, field = 'webhook.url'): void {
    if (this.allows(url)) return;
    throw new GembatchError(
      'GB_ERR_WEBHOOK_NOT_ALLOWED',
      this.enabled
        ? `${field}: not on the operator's webhook allowlist (GEMBATCH_WEBHOOK_ALLOWED_URLS)`
        : `${field}: webhooks are not enabled on this server (GEMBATCH_WEBHOOK_ALLOWED_URLS is empty)`,
    );
  }
}
