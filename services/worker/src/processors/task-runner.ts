import {
  GembatchError,
  TASKS,
  type BoundTask,
  type JobSpec,
  type TaskCall,
  type TaskChunking,
  type TaskHelpers,
  type TaskInput,
  type TaskRegistry,
} from '@gembatch/contracts';
import { generateStructured, type Engine, type GenerateRequest, type GenerateResult } from '@gembatch/inference';

export type { TaskInput } from '@gembatch/contracts';

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

/** What the runner reads of a job: a task name (from its registry) and how to run it. */
export type TaskJob = Pick<JobSpec, 'options' | 'max_tokens' | 'temperature' | 'json_schema'> & { task: string };

export interface TaskRunnerOptions {
  engine: Engine;
  /** Repair attempts for structured output. */
  schemaRepairs: number;
  /** The task definitions jobs name. Defaults to the built-in `TASKS`. */
  tasks?: TaskRegistry;
}

/**
 * Runs tasks on an engine. Everything task-specific comes from the task's definition (contracts'
 * `TASKS`): its prompt, how it runs on one input, how chunk outputs combine. The runner builds the
 * engine requests, applies structured output with repairs, checks every output against the task's
 * output schema (`GB_ERR_OUTPUT_INVALID`), and sums usage over every engine call (so job records
 * and node counters agree exactly).
 */
export class TaskRunner {
  readonly #engine: Engine;
  readonly #schemaRepairs: number;
  readonly #tasks: TaskRegistry;

  constructor(options: TaskRunnerOptions) {
    this.#engine = options.engine;
    this.#schemaRepairs = options.schemaRepairs;
    this.#tasks = options.tasks ?? TASKS;
  }

  /** The job's task with its options applied. An unknown task or bad options → `GB_ERR_BAD_REQUEST`. */
  #task(job: TaskJob): BoundTask {
    const definition = Object.hasOwn(this.#tasks, job.task) ? this.#tasks[job.task] : undefined;
    if (!definition)
      throw new GembatchError('GB_ERR_BAD_REQUEST', `no task named ${JSON.stringify(job.task.slice(0, 100))}`);
    return definition.bind(job.options);
  }

  /** How a long text is cut for the job's task (overlap, blank chunks). */
  chunking(job: TaskJob): TaskChunking {
    return this.#task(job).chunking;
  }

  /** The request a task makes for an input (used to count prompt tokens before running). */
  request(job: TaskJob, input: TaskInput, signal?: AbortSignal): GenerateRequest {
    const task = this.#task(job);
    return {
      prompt: task.prompt,
      input: input.text,
      media: input.media.map(({ kind, path }) => ({ kind, path })),
      maxTokens: job.max_tokens,
      thinking: task.thinking,
      ...(job.temperature !== undefined ? { temperature: job.temperature } : {}),
      ...(signal ? { signal } : {}),
    };
  }

  /** Runs the task on one input (a whole document or one chunk of it). */
  async run(
    job: TaskJob,
    input: TaskInput,
    options: { signal?: AbortSignal; onToken?: (n: number) => void } = {},
  ): Promise<TaskOutcome> {
    const task = this.#task(job);
    const stats = new StatsAccumulator();
    const base = {
      ...this.request(job, input, options.signal),
      ...(options.onToken ? { onToken: options.onToken } : {}),
    };
    const result = await task.run(this.#helpers(base, input, job, stats));
    return { output: task.checkOutput(result.output), text: result.text, stats: stats.snapshot() };
  }

  /**
   * Combines the outcomes of a long input's chunks, in order. `concat` tasks merge them as their
   * definition says; `model` tasks run again on the partials with their reduce prompt (summary of
   * summaries), in rounds when the partials do not fit at once.
   */
  async reduce(
    job: TaskJob,
    partials: readonly TaskOutcome[],
    options: { signal?: AbortSignal; contextTokens: number; safetyTokens: number },
  ): Promise<TaskOutcome> {
    const task = this.#task(job);
    const stats = new StatsAccumulator();
    for (const partial of partials) stats.merge(partial.stats);
    const reduce = task.reduce;
    if (reduce.strategy === 'concat') {
      const merged = reduce.merge(partials);
      return { output: task.checkOutput(merged.output), text: merged.text, stats: stats.snapshot() };
    }

    const reduceRequest = (group: readonly string[], signal?: AbortSignal): GenerateRequest => ({
      prompt: reduce.prompt,
      input: group.map((text, i) => `Part ${i + 1}:\n${text}`).join('\n\n'),
      media: [],
      maxTokens: job.max_tokens,
      thinking: task.thinking,
      ...(signal ? { signal } : {}),
    });
    let texts = partials.map((p) => p.text);
    // Each round combines as many consecutive partials as fit the context, until one output remains.
    for (;;) {
      const fits = async (group: string[]) =>
        (await this.#engine.countPromptTokens(reduceRequest(group))) + job.max_tokens + options.safetyTokens <=
        options.contextTokens;
      const groups = await groupToFit(texts, fits);
      if (groups.length > 1 && groups.length === texts.length) {
        throw new GembatchError(
          'GB_ERR_CONTEXT_OVERFLOW',
          'the partial outputs of the chunks are too long to combine in this context; lower max_tokens',
        );
      }
      const outcomes: TaskOutcome[] = [];
      for (const group of groups) {
        const request = reduceRequest(group, options.signal);
        const result = await task.run(this.#helpers(request, { text: request.input, media: [] }, job, stats));
        outcomes.push({ output: task.checkOutput(result.output), text: result.text, stats: stats.snapshot() });
      }
      if (outcomes.length === 1) return { ...(outcomes[0] as TaskOutcome), stats: stats.snapshot() };
      texts = outcomes.map((o) => o.text);
    }
  }

  /** The engine as a task's `run` sees it: calls start from `base`, and each one's usage is added to `stats`. */
  #helpers(base: GenerateRequest, input: TaskInput, job: TaskJob, stats: StatsAccumulator): TaskHelpers {
    const request = (call: TaskCall): GenerateRequest => ({
      ...base,
      ...(call.prompt ? { prompt: call.prompt } : {}),
      ...(call.input !== undefined ? { input: call.input } : {}),
      ...(call.media ? { media: call.media.map(({ kind, path }) => ({ kind, path })) } : {}),
    });
    return {
      input,
      jsonSchema: job.json_schema,
      generate: async (call = {}) => stats.add(await this.#engine.generate(request(call))).text,
      structured: async (schema, call = {}) => {
        const outcome = await generateStructured(
          this.#engine,
          { ...request(call), jsonSchema: schema },
          { schema, maxRepairs: this.#schemaRepairs, onAttempt: (result) => stats.add(result) },
        );
        return outcome.value;
      },
    };
  }
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
