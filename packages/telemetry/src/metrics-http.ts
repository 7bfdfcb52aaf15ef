import { Counter, Histogram, type Registry } from 'prom-client';

/** The API's own HTTP metrics (served on the API's `/metrics`, scraped as job `gembatch-api`). */
export const HTTP_FAMILIES = {
  requests: { name: 'gembatch_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status code.', labelNames: ['method', 'route', 'status'] },
  duration: {
    name: 'gembatch_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method and route pattern.',
    labelNames: ['method', 'route'],
    // 5 ms (a status read) to 2 min (a multi-GB upload streamed to the blob store).
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  },
  uploadBytes: {
    name: 'gembatch_upload_bytes',
    help: 'Size of uploaded files.',
    labelNames: [],
    // Powers of 4 from 1 KiB to 16 GiB: a one-line text to a long recording or a scanned book.
    buckets: Array.from({ length: 13 }, (_, i) => 1024 * 4 ** i),
  },
} as const;

/** Route label for requests that matched no route: never the raw URL (unbounded, may carry ids). */
export const UNMATCHED_ROUTE = 'unmatched';

/** One answered request, content-free. */
export interface HttpObservation {
  method: string;
  /** The route pattern (`/v1/jobs/:id`), never the URL; `undefined` for no route. */
  route: string | undefined;
  status: number;
  durationMs: number;
}

/** HTTP request counters and latency/upload histograms, registered in the caller's registry. */
export class HttpMetrics {
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly duration: Histogram<'method' | 'route'>;
  private readonly uploads: Histogram;

  /** @param registry The process's registry (the API's `/metrics`). */
  constructor(registry: Registry) {
    this.requests = new Counter({ ...HTTP_FAMILIES.requests, labelNames: [...HTTP_FAMILIES.requests.labelNames], registers: [registry] });
    this.duration = new Histogram({ ...HTTP_FAMILIES.duration, labelNames: [...HTTP_FAMILIES.duration.labelNames], buckets: [...HTTP_FAMILIES.duration.buckets], registers: [registry] });
    this.uploads = new Histogram({ name: HTTP_FAMILIES.uploadBytes.name, help: HTTP_FAMILIES.uploadBytes.help, buckets: [...HTTP_FAMILIES.uploadBytes.buckets], registers: [registry] });
  }

  /** Counts an answered request. */
  observeRequest(observation: HttpObservation): void {
    // Methods are a small set; anything odd is folded so a client cannot create series at will.
    const method = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/.test(observation.method) ? observation.method : 'OTHER';
    const route = observation.route ?? UNMATCHED_ROUTE;
    this.requests.inc({ method, route, status: String(observation.status) });
    if (Number.isFinite(observation.durationMs) && observation.durationMs >= 0) this.duration.observe({ method, route }, observation.durationMs / 1000);
  }

  /** Counts an uploaded file of `bytes`. */
  observeUpload(bytes: number): void {
    if (Number.isFinite(bytes) && bytes >= 0) this.uploads.observe(bytes);
  }
}
