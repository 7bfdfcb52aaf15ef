/** Types for parse-prometheus-text-format 1.1.1, which ships none. Values stay strings, as it returns them. */
declare module 'parse-prometheus-text-format' {
  interface RawPrometheusSample {
    value?: string;
    labels?: Record<string, string>;
    timestamp_ms?: string;
    buckets?: Record<string, string>;
    quantiles?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  interface RawPrometheusFamily {
    name: string;
    help: string;
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    metrics: RawPrometheusSample[];
  }
  /** Throws `InvalidLineError` on a malformed line. */
  function parsePrometheusTextFormat(text: string): RawPrometheusFamily[];
  export = parsePrometheusTextFormat;
}
