import { GembatchError, TASKS, type JobSpec, type TaskName } from '@gembatch/contracts';
import { generateStructured, type Engine, type GenerateRequest, type GenerateResult, type MediaInput } from '@gembatch/inference';
import { detectIdentifiers, findLiterals, maskSpans, mergeSpans, type IdentifierType, type Span } from './redaction.ts';

/** What one task run consumed and how it went, summed over every engine call it made. */
export interface RunStats {
  promptTokens: number;
  generatedTokens: number;
  mediaTokens: number;
  /** Time to first token of the first call. */
  timeToFirstTokenMs: number | null;
  /** Mean inter-token latency over all calls, weighted by tokens. */
  interTokenMs: number | null;
  generateMs: number;
  finishReason: 'stop' | 'length';
  calls: number;
}

/** A task's output, plus its text form (what a reduce step reads). */
export interface TaskOutcome {
  output: unknown;
  /** The output as text for combining chunk outputs (JSON for structured tasks). */
  text: string;
  stats: RunStats;
}

export interface TaskInput {
  text: string;
  media: Array<MediaInput & { startS?: number; endS?: number }>;
}

export interface TaskRunnerOptions {
  engine: Engine;
  /** Repair attempts for structured output. */
  schemaRepairs: number;
}

/**
 * Runs the built-in tasks on an engine: builds each request from the task definition in
 * contracts, applies structured output where the task or caller asks for it, and sums usage
 * over every engine call (so job records and node counters agree exactly).
 */
export class TaskRunner {
  readonly #engine: Engine;
  readonly #schemaRepairs: number;

  constructor(options: TaskRunnerOptions) {
    this.#engine = options.engine;
    this.#schemaRepairs = options.schemaRepairs;
  }

  /** The request a task makes for an input (used to count prompt tokens before running). */
  request(spec: JobSpec, input: TaskInput, signal?: AbortSignal): GenerateRequest {
    const task = TASKS[spec.task];
    return {
      prompt: task.prompt(spec.options as never),
      input: input.text,
      media: input.media.map(({ kind, path }) => ({ kind, path })),
      maxTokens: spec.max_tokens,
      thinking: task.thinking,
      ...(spec.temperature !== undefined ? { temperature: spec.temperature } : {}),
      ...(signal ? { signal } : {}),
    };
  }

  /** Runs the task on one input (a whole document or one chunk of it). */
  async run(spec: JobSpec, input: TaskInput, options: { signal?: AbortSignal; onToken?: (n: number) => void } = {}): Promise<TaskOutcome> {
    const stats = new StatsAccumulator();
    const base = { ...this.request(spec, input, options.signal), ...(options.onToken ? { onToken: options.onToken } : {}) };
    switch (spec.task) {
      case 'extract': {
        const schema = (spec.options as { schema: Record<string, unknown> }).schema;
        const data = await this.#structured(base, schema, stats);
        return { output: { data }, text: JSON.stringify(data), stats: stats.snapshot() };
      }
      case 'classify': {
        const labels = (spec.options as { labels: string[] }).labels;
        const value = (await this.#structured(base, classifySchema(labels), stats)) as { label: string; confidence: number };
        return { output: value, text: JSON.stringify(value), stats: stats.snapshot() };
      }
      case 'redact':
        return this.#redact(spec, input, base, stats);
      case 'transcribe':
        return this.#transcribe(input, base, stats);
      default: {
        if (spec.json_schema) {
          const data = await this.#structured(base, spec.json_schema, stats);
          return { output: { text: JSON.stringify(data), data }, text: JSON.stringify(data), stats: stats.snapshot() };
        }
        const result = stats.add(await this.#engine.generate(base));
        return { output: { text: result.text.trim() }, text: result.text.trim(), stats: stats.snapshot() };
      }
    }
  }

  /**
   * Combines the outcomes of a long input's chunks, in order. `concat` tasks join them; `model`
   * tasks ask the model (summary of summaries), in rounds when the partials do not fit at once.
   */
  async reduce(spec: JobSpec, partials: readonly TaskOutcome[], options: { signal?: AbortSignal; contextTokens: number; safetyTokens: number }): Promise<TaskOutcome> {
    const stats = new StatsAccumulator();
    for (const partial of partials) stats.merge(partial.stats);
    const task = TASKS[spec.task];
    if (task.reduce === 'concat') return { output: concatOutputs(spec.task, partials), text: partials.map((p) => p.text).join('\n'), stats: stats.snapshot() };

    let texts = partials.map((p) => p.text);
    // Each round combines as many consecutive partials as fit the context, until one output remains.
    for (;;) {
      const fits = async (group: string[]) => (await this.#engine.countPromptTokens(this.#reduceRequest(spec, group))) + spec.max_tokens + options.safetyTokens <= options.contextTokens;
      const groups = await groupToFit(texts, fits);
      if (groups.length > 1 && groups.length === texts.length) {
        throw new GembatchError('GB_ERR_CONTEXT_OVERFLOW', 'the partial outputs of the chunks are too long to combine in this context; lower max_tokens');
      }
      const outcomes: TaskOutcome[] = [];
      for (const group of groups) outcomes.push(await this.#reduceOnce(spec, this.#reduceRequest(spec, group, options.signal), stats));
      if (outcomes.length === 1) return { ...(outcomes[0] as TaskOutcome), stats: stats.snapshot() };
      texts = outcomes.map((o) => o.text);
    }
  }

  #reduceRequest(spec: JobSpec, group: readonly string[], signal?: AbortSignal): GenerateRequest {
    const task = TASKS[spec.task];
    return {
      prompt: task.reducePrompt(spec.options as never),
      input: group.map((text, i) => `Part ${i + 1}:\n${text}`).join('\n\n'),
      media: [],
      maxTokens: spec.max_tokens,
      thinking: task.thinking,
      ...(signal ? { signal } : {}),
    };
  }

  async #reduceOnce(spec: JobSpec, request: GenerateRequest, stats: StatsAccumulator): Promise<TaskOutcome> {
    const schema = spec.task === 'extract' ? (spec.options as { schema: Record<string, unknown> }).schema : spec.task === 'classify' ? classifySchema((spec.options as { labels: string[] }).labels) : spec.json_schema;
    if (schema) {
      const data = await this.#structured(request, schema, stats);
      const output = spec.task === 'extract' ? { data } : spec.task === 'classify' ? data : { text: JSON.stringify(data), data };
      return { output, text: JSON.stringify(data), stats: stats.snapshot() };
    }
    const result = stats.add(await this.#engine.generate(request));
    return { output: { text: result.text.trim() }, text: result.text.trim(), stats: stats.snapshot() };
  }

  async #structured(request: GenerateRequest, schema: Record<string, unknown>, stats: StatsAccumulator): Promise<unknown> {
    const outcome = await generateStructured(this.#engine, { ...request, jsonSchema: schema }, { schema, maxRepairs: this.#schemaRepairs, onAttempt: (result) => stats.add(result) });
    return outcome.value;
  }

  async #redact(spec: JobSpec, input: TaskInput, base: GenerateRequest, stats: StatsAccumulator): Promise<TaskOutcome> {
    const types = (spec.options as { types?: IdentifierType[] }).types;
    const wants = (type: IdentifierType) => !types || types.includes(type);
    let text = input.text;
    if (text.length === 0 && input.media.length > 0) {
      // Media (a recording, a photo): the model first turns it into text, which is then redacted.
      const transcript = stats.add(await this.#engine.generate({ ...base, prompt: TASKS.transcribe.prompt({}), maxTokens: base.maxTokens }));
      text = transcript.text.trim();
    }
    // A blank chunk of a long text has nothing to mask: it passes through, so the joined output keeps every character.
    if (text.trim().length === 0) return { output: { text, spans: [] }, text, stats: stats.snapshot() };
    const spans: Span[] = detectIdentifiers(text, types);
    if (wants('name') || wants('address')) {
      const found = (await this.#structured({ ...base, input: text, media: [] }, REDACT_ENTITIES_SCHEMA, stats)) as { names: string[]; addresses: string[] };
      if (wants('name')) spans.push(...findLiterals(text, found.names, 'name'));
      if (wants('address')) spans.push(...findLiterals(text, found.addresses, 'address'));
    }
    const merged = mergeSpans(spans);
    return { output: { text: maskSpans(text, merged), spans: merged }, text: maskSpans(text, merged), stats: stats.snapshot() };
  }

  async #transcribe(input: TaskInput, base: GenerateRequest, stats: StatsAccumulator): Promise<TaskOutcome> {
    const audio = input.media.filter((m) => m.kind === 'audio');
    if (audio.length === 0) throw new GembatchError('GB_ERR_UNSUPPORTED_MEDIA', 'transcribe needs audio input');
    const segments: Array<{ start_s: number; end_s: number; text: string }> = [];
    for (const part of audio) {
      const result = stats.add(await this.#engine.generate({ ...base, media: [{ kind: 'audio', path: part.path }] }));
      segments.push({ start_s: part.startS ?? 0, end_s: part.endS ?? 0, text: result.text.trim() });
    }
    const text = segments.map((s) => s.text).join(' ');
    return { output: { text, segments }, text, stats: stats.snapshot() };
  }
}

const REDACT_ENTITIES_SCHEMA = {
  type: 'object',
  properties: { names: { type: 'array', items: { type: 'string' }, maxItems: 200 }, addresses: { type: 'array', items: { type: 'string' }, maxItems: 200 } },
  required: ['names', 'addresses'],
  additionalProperties: false,
} as const satisfies Record<string, unknown>;

const CONFIDENCE_STEPS = Array.from({ length: 11 }, (_, i) => i / 10);

function classifySchema(labels: readonly string[]): Record<string, unknown> {
  return {
    type: 'object',
    // Confidence in tenths: a grammar cannot bound a free number, an enum it can.
    properties: { label: { type: 'string', enum: labels }, confidence: { enum: CONFIDENCE_STEPS } },
    required: ['label', 'confidence'],
    additionalProperties: false,
  };
}

function concatOutputs(task: TaskName, partials: readonly TaskOutcome[]): unknown {
  if (task === 'redact') {
    let offset = 0;
    const spans: Span[] = [];
    const texts: string[] = [];
    for (const partial of partials) {
      const out = partial.output as { text: string; spans: Span[] };
      spans.push(...out.spans.map((s) => ({ ...s, start: s.start + offset, end: s.end + offset })));
      texts.push(out.text);
      offset += out.text.length;
    }
    return { text: texts.join(''), spans };
  }
  if (task === 'transcribe') {
    const segments = partials.flatMap((p) => (p.output as { segments: unknown[] }).segments);
    return { text: partials.map((p) => p.text).join(' '), segments };
  }
  return { text: partials.map((p) => p.text).join('\n') };
}

/** Splits texts into consecutive groups whose combination fits the context (a single text always forms a group). */
async function groupToFit(texts: readonly string[], fits: (texts: string[]) => Promise<boolean>): Promise<string[][]> {
  const groups: string[][] = [];
  let current: string[] = [];
  for (const text of texts) {
    if (current.length > 0 && !(await fits([...current, text]))) {
      groups.push(current);
      current = [];
    }
    current.push(text);
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Sums usage over engine calls. */
class StatsAccumulator {
  promptTokens = 0;
  generatedTokens = 0;
  mediaTokens = 0;
  timeToFirstTokenMs: number | null = null;
  #itlWeighted = 0;
  #itlTokens = 0;
  generateMs = 0;
  finishReason: RunStats['finishReason'] = 'stop';
  calls = 0;

  add(result: GenerateResult): GenerateResult {
    this.promptTokens += result.promptTokens;
    this.generatedTokens += result.generatedTokens;
    this.mediaTokens += result.mediaTokens;
    this.timeToFirstTokenMs ??= result.timeToFirstTokenMs;
    if (result.interTokenMs !== null && result.generatedTokens > 1) {
      this.#itlWeighted += result.interTokenMs * (result.generatedTokens - 1);
      this.#itlTokens += result.generatedTokens - 1;
    }
    this.generateMs += result.totalMs;
    if (result.finishReason === 'length') this.finishReason = 'length';
    this.calls += 1;
    return result;
  }

  merge(stats: RunStats): void {
    this.promptTokens += stats.promptTokens;
    this.generatedTokens += stats.generatedTokens;
    this.mediaTokens += stats.mediaTokens;
    this.timeToFirstTokenMs ??= stats.timeToFirstTokenMs;
    if (stats.interTokenMs !== null) {
      // Weight by generated tokens: the partial's own inter-token count is not kept.
      this.#itlWeighted += stats.interTokenMs * stats.generatedTokens;
      this.#itlTokens += stats.generatedTokens;
    }
    this.generateMs += stats.generateMs;
    if (stats.finishReason === 'length') this.finishReason = 'length';
    this.calls += stats.calls;
  }

  snapshot(): RunStats {
    return {
      promptTokens: this.promptTokens,
      generatedTokens: this.generatedTokens,
      mediaTokens: this.mediaTokens,
      timeToFirstTokenMs: this.timeToFirstTokenMs,
      interTokenMs: this.#itlTokens > 0 ? this.#itlWeighted / this.#itlTokens : null,
      generateMs: this.generateMs,
      finishReason: this.finishReason,
      calls: this.calls,
    };
  }
}
