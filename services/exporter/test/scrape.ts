import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { parsePrometheusText, type ParsedMetrics } from '@gembatch/telemetry';

/** One scrape, read by an independent parser (families) and by ours (every sample, histograms included). */
export interface Scrape {
  status: number;
  text: string;
  families: PrometheusFamily[];
  parsed: ParsedMetrics;
}

/** GETs a `/metrics` URL and parses it; throws if either parser rejects a line. */
export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  const text = await response.text();
  const families = parsePrometheusTextFormat(text);
  const parsed = parsePrometheusText(text);
  if (parsed.errors.length > 0) throw new Error(`unparsable exposition lines: ${JSON.stringify(parsed.errors.slice(0, 3))}`);
  return { status: response.status, text, families, parsed };
}

/** Values of a gauge or counter family by the value of one label (from the independent parser). */
export function valuesBy(scraped: Scrape, family: string, label: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const metric of scraped.families.find((f) => f.name === family)?.metrics ?? []) {
    const key = metric.labels?.[label];
    if (key !== undefined && metric.value !== undefined) result.set(key, Number(metric.value));
  }
  return result;
}
