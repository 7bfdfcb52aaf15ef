/** One sample line of the Prometheus text format. */
export interface ParsedSample {
  /** Full sample name (`x_bucket`, `x_sum` for histograms). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  samples: ParsedSample[];
  /** Family name → `counter`, `gauge`, `histogram`, `summary` or `untyped`, from `# TYPE` lines. */
  types: Map<string, string>;
  /** Lines that did not parse, with their 1-based line number (the rest is still returned). */
  errors: Array<{ line: number; message: string }>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(text: string): number | undefined {
  switch (text) {
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    case 'NaN':
    case 'Nan':
      return Number.NaN;
    default: {
      const value = Number(text);
      return text.trim() === '' || Number.isNaN(value) ? undefined : value;
    }
  }
}

/** Parses `{a="x",b="y"}` starting at `start` (the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } | string {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const name = LABEL_NAME.exec(line.slice(i))?.[0];
    if (!name) return `bad label name at column ${i + 1}`;
    i += name.length;
    while (line[i] === ' ') i++;
    if (line[i] !== '=' || line[i + 1] !== '"') return `expected ="…" after label ${name}`;
    i += 2;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) return `unterminated value of label ${name}`;
      if (c === '"') break;
      if (c === '\\') {
        const next = line[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    labels[name] = value;
    i++;
  }
}

/**
 * Parses Prometheus text exposition (format 0.0.4): sample lines and `# TYPE` comments. Never
 * throws: a line that does not parse is reported in `errors` and skipped.
 */
export function parsePrometheusText(text: string): ParsedMetrics {
  const result: ParsedMetrics = { samples: [], types: new Map(), errors: [] };
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      const type = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (type) result.types.set(type[1] as string, type[2] as string);
      return;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) {
      result.errors.push({ line: index + 1, message: 'no metric name' });
      return;
    }
    let labels: Record<string, string> = {};
    let rest = name.length;
    if (line[rest] === '{') {
      const parsed = parseLabels(line, rest);
      if (typeof parsed === 'string') {
        result.errors.push({ line: index + 1, message: parsed });
        return;
      }
      labels = parsed.labels;
      rest = parsed.end;
    }
    const [valueText = ''] = line.slice(rest).trim().split(/\s+/);
    const value = parseValue(valueText);
    if (value === undefined) {
      result.errors.push({ line: index + 1, message: `bad value ${JSON.stringify(valueText.slice(0, 40))}` });
      return;
    }
    result.samples.push({ name, labels, value });
  });
  return result;
}

/** The samples named `name` whose labels include every label in `match`. */
export function selectSamples(
  metrics: ParsedMetrics,
  name: string,
  match: Readonly<Record<string, string>> = {},
): ParsedSample[] {
  return metrics.samples.filter(
    (sample) => sample.name === name && Object.entries(match).every(([key, value]) => sample.labels[key] === value),
  );
}
