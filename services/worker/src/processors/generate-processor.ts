import { decodeFailedReason, GembatchError, TASKS, type GenerateJobData, type GenerateJobResult, type JobResultDocument } from '@gembatch/contracts';
import type { Engine } from '@gembatch/inference';
import type { Processor } from '@gembatch/queue';
import { putJson, type BlobStore } from '@gembatch/storage';
import { loadInput } from './load-input.ts';
import type { RunStats, TaskOutcome, TaskRunner } from './task-runner.ts';

/** Tokens kept free beyond prompt + max_tokens, so template edge tokens never overflow. */
const CONTEXT_SAFETY_TOKENS = 16;

export interface GenerateProcessorDeps {
  engine: Engine;
  runner: TaskRunner;
  blobs: BlobStore;
  node: string;
  /** Splits text into chunks of at most `maxTokens` tokens with `overlapTokens` overlap, in order. */
  chunkText(text: string, maxTokens: number, overlapTokens: number): Promise<string[]>;
  overlapTokens: number;
}

/** What a chunk child returns to its parent (kept in Redis until the parent reduces). */
export interface ChunkResult {
  chunk: number;
  outcome: TaskOutcome;
}

/**
 * The `generate` processor. A job whose input fits the context runs at once. A longer text is split
 * into token-sized chunks that run as child jobs (spread over every sequence of every node); the
 * parent then reduces their outputs in chunk order. Media inputs cannot be split: too long → overflow.
 */
export function createGenerateProcessor(deps: GenerateProcessorDeps): Processor<GenerateJobData, GenerateJobResult | ChunkResult> {
  const { engine, runner, blobs } = deps;
  const context = () => engine.info.contextPerSequence;

  return async (data, ctx) => {
    const input = await loadInput(data, blobs);
    const onToken = (n: number) => ctx.progress((n / data.max_tokens) * 100);
    const run = { signal: ctx.signal, onToken };

    if (data.chunk) {
      const outcome = await runner.run(data, input, run);
      ctx.log.info({ chunk: data.chunk.index, of: data.chunk.count, generatedTokens: outcome.stats.generatedTokens }, 'chunk done');
      return { chunk: data.chunk.index, outcome } satisfies ChunkResult;
    }

    const promptTokens = await engine.countPromptTokens(runner.request(data, input));
    let outcome: TaskOutcome;
    let chunks = 1;
    if (promptTokens + data.max_tokens + CONTEXT_SAFETY_TOKENS <= context()) {
      outcome = await runner.run(data, input, run);
    } else {
      if (input.media.length > 0 || input.text.length === 0) {
        throw new GembatchError('GB_ERR_CONTEXT_OVERFLOW', `the input needs ${promptTokens} prompt tokens + ${data.max_tokens} to generate, more than the ${context()}-token context, and media cannot be split`, { details: { promptTokens, context: context() } });
      }
      const overhead = promptTokens - (await engine.countTokens(input.text));
      const maxChunkTokens = context() - overhead - data.max_tokens - CONTEXT_SAFETY_TOKENS;
      // A chunk must carry real content beyond the overlap, or the split never ends.
      if (maxChunkTokens <= deps.overlapTokens + 32) {
        throw new GembatchError('GB_ERR_CONTEXT_OVERFLOW', `max_tokens ${data.max_tokens} leaves no room for input in the ${context()}-token context`, { details: { promptTokens, context: context() } });
      }
      // Concatenated outputs (transcripts, redacted text) would repeat an overlap; only model reduces use one.
      const overlap = TASKS[data.task].reduce === 'concat' ? 0 : deps.overlapTokens;
      const pieces = await deps.chunkText(input.text, maxChunkTokens, overlap);
      chunks = pieces.length;
      const children = await Promise.all(
        pieces.map(async (piece, index) => {
          const { sha256 } = await blobs.put(Buffer.from(piece, 'utf8'));
          const child: GenerateJobData = { ...data, chunk: { index, count: pieces.length, text_sha256: sha256 } };
          return { queue: ctx.queue, id: `${ctx.jobId}-chunk-${index}`, data: child };
        }),
      );
      ctx.log.info({ chunks: pieces.length, promptTokens, maxChunkTokens }, 'input split into chunks');
      const outcomes = await ctx.awaitChildren<ChunkResult>(children);
      const partials: TaskOutcome[] = outcomes.map((o, index) => {
        if (!o.ok) {
          const error = decodeFailedReason(o.failedReason);
          throw new GembatchError(error.code, `chunk ${index + 1} of ${pieces.length} failed: ${error.message}`);
        }
        return o.value.outcome;
      });
      ctx.progress(90);
      outcome = await runner.reduce(data, partials, { signal: ctx.signal, contextTokens: context(), safetyTokens: CONTEXT_SAFETY_TOKENS });
    }

    const finishedAt = Date.now();
    const stats: RunStats = outcome.stats;
    const timings = {
      queue_wait_ms: Math.max(0, ctx.firstStartedAt - ctx.enqueuedAt),
      extract_ms: data.extract_ms ?? 0,
      time_to_first_token_ms: stats.timeToFirstTokenMs,
      inter_token_ms: stats.interTokenMs,
      generate_ms: stats.generateMs,
      total_ms: Math.max(0, finishedAt - data.submitted_at),
    };
    const usage = { prompt_tokens: stats.promptTokens, generated_tokens: stats.generatedTokens, media_tokens: stats.mediaTokens };
    const document: JobResultDocument = {
      job_id: data.job_id,
      task: data.task,
      output: outcome.output,
      usage,
      timings,
      finish_reason: stats.finishReason,
      model: engine.info.model,
      node: deps.node,
      chunks,
      ...(input.extraction ? { extraction: input.extraction } : {}),
      ...(data.metadata ? { metadata: data.metadata } : {}),
    };
    const { sha256 } = await putJson(blobs, document);
    ctx.progress(100);
    ctx.log.info({ promptTokens: usage.prompt_tokens, generatedTokens: usage.generated_tokens, chunks, ms: timings.total_ms }, 'job generated');
    return { result_sha256: sha256, usage, timings, finish_reason: stats.finishReason, node: deps.node, model: engine.info.model, chunks };
  };
}
