import { parsePrometheusFamilies, type PrometheusFamily } from '@gembatch/testing';
import { parsePrometheusText, type ParsedMetrics } from '@gembatch/telemetry';

/** One scrape, read by an independent parser (families, from parse-prometheus-text-format) and by ours (every sample, histograms included). */
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
  const families = parsePrometheusFamilies(text);
  const parsed = parsePrometheusText(text);
  if (parsed.errors.length > 0)
    throw new Error(`unparsable exposition lines: ${JSON.stringify(parsed.errors.slice(0, 3))}`);
  return { status: response.status, text, families, parsed };
}

/** Values of a gauge or counter family by the value of one label (from the independent parser). */
export function valuesBy(scraped: Scrape, family: string, label: string): Map<string, number> {
  const result = new Map<string, number>();
  const found = scraped.families.find((f) => f.name === family);
  if (!found || found.type === 'histogram' || found.type === 'summary') return result;
  for (const metric of found.metrics) {
    const key = metric.labels[label];
    if (key !== undefined) result.set(key, metric.value);
  }
  return result;
}
