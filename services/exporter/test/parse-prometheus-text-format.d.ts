/** Types for the untyped `parse-prometheus-text-format` (values stay strings, as it returns them). */
declare module 'parse-prometheus-text-format' {
  export interface PrometheusFamily {
    name: string;
    help: string;
    /** Upper case: `GAUGE`, `COUNTER`, `HISTOGRAM`, `SUMMARY` or `UNTYPED`. */
    type: string;
    metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }>;
  }
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[];
}
