import { parsePrometheusFamilies } from '@gembatch/testing';

/** Text one service exposed: its log lines, or one `/metrics` page. */
export interface ScannedSource {
  /** e.g. `worker.log` or `worker /metrics`. */
  name: string;
  kind: 'log' | 'metrics';
  text: string;
}

/** One place where submitted text showed up. */
export interface Leak {
  source: string;
  needle: string;
  /** The offending line, cut to 200 characters. */
  line: string;
}

/** What was scanned, for the report line. */
export interface ScanCounts {
  logLines: number;
  metricLabels: number;
}

/**
 * Looks for every needle (case-insensitively) in every log line and in every metric's name, help
 * text and label values, so a leak is found however it is escaped in JSON (needles are plain words).
 */
export function scanForDocumentText(
  sources: readonly ScannedSource[],
  needles: readonly string[],
): { leaks: Leak[]; counts: ScanCounts } {
  const lowered = needles.map((needle) => needle.toLowerCase());
  const leaks: Leak[] = [];
  const counts: ScanCounts = { logLines: 0, metricLabels: 0 };
  const check = (source: string, line: string) => {
    const haystack = line.toLowerCase();
    lowered.forEach((needle, index) => {
      if (haystack.includes(needle)) leaks.push({ source, needle: needles[index] as string, line: line.slice(0, 200) });
    });
  };
  for (const source of sources) {
    if (source.kind === 'log') {
      for (const line of source.text.split('\n')) {
        if (line.length === 0) continue;
        counts.logLines++;
        check(source.name, line);
      }
      continue;
    }
    for (const family of parsePrometheusFamilies(source.text)) {
      check(source.name, `${family.name} ${family.help}`);
      for (const metric of family.metrics) {
        for (const [label, value] of Object.entries(metric.labels)) {
          counts.metricLabels++;
          check(source.name, `${family.name}{${label}="${value}"}`);
        }
      }
    }
  }
  return { leaks, counts };
}
