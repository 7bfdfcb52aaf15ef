/**
 * Metric names a PromQL expression reads (test helper): what is left after removing strings,
 * label matchers, ranges, grouping clauses, function calls and keywords. Grafana variables
 * (`$__rate_interval`, `$node`) are replaced first.
 */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
  'atan2',
]);

/** Grafana's interval variables as a duration, and other variables as a match-all regex. */
export function substituteGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '1m').replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, '.*');
}

export function promqlMetricNames(expr: string): string[] {
  let text = substituteGrafanaVariables(expr);
  text = text.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  text = text.replace(/\{[^}]*\}/g, ' ');
  text = text.replace(/\[[^\]]*\]/g, ' ');
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of text.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = match[0];
    const after = text.slice((match.index ?? 0) + name.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(name.toLowerCase())) continue;
    // Exponent part of a number like 1e9.
    if (/[0-9.]$/.test(text.slice(0, match.index ?? 0))) continue;
    names.add(name);
  }
  return [...names];
}
