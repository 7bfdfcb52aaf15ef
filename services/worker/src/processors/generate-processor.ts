import {
  decodeFailedReason,
  GembatchError,
  type GenerateJobData,
  type GenerateJobResult,
  type JobResultDocument,
} from '@gembatch/contracts';
import { sliceText, TOKENIZE_SLICE_CHARS, type Engine } from '@gembatch/inference';
import type { Processor } from '@gembatch/queue';
import { putJson, type BlobStore } from '@gembatch/storage';
import { loadInput, type LoadedInput } from './load-input.ts';
import type { RunStats, TaskOutcome, TaskRunner } from './task-runner.ts';

/**
 * Gives the event loop a turn. Tokenizing is synchronous native work (~1 s per MB of text) behind
 * promises that resolve at once, so back-to-back counts of one long input held the loop for
 * seconds (the hostile-input chaos scenario saw a 5-10 s stall and a failing /livez); between
 * them, other jobs' decode steps, lock renewals and heartbeats run.
 */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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
  /**
   * Most chunk jobs one input may fan out into (`GEMBATCH_MAX_CHUNKS_PER_JOB`); more fails with
   * `GB_ERR_INPUT_TOO_LARGE`. Defaults to `DEFAULT_MAX_CHUNKS_PER_JOB`.
   */
  maxChunks?: number;
}

/**
 * Why 1,000: at a 4k-token context that is ~4M tokens (a 3,000-page book), far beyond one job's
 * sensible size; one 1 MB inline text on a small context fanned out into ~7,500 chunk jobs (issue 9).
 */
const DEFAULT_MAX_CHUNKS_PER_JOB = 1_000;

/** What a chunk child returns to its parent (kept in Redis until the parent reduces). */
export interface ChunkResult {
  chunk: number;
  outcome: TaskOutcome;
}

/**
 * The `generate` processor. A job whose input fits the context runs at once. A longer text is split
 * into token-sized chunks that run as child jobs (spread over every sequence of every node); the
 * parent then reduces their outputs in chunk order. Media split the same way, as runs of pages or
 * audio segments (a long recording, a many-page scan read as images).
 */
export function createGenerateProcessor(
  deps: GenerateProcessorDeps,
): Processor<GenerateJobData, GenerateJobResult | ChunkResult> {
  const { engine, runner, blobs } = deps;
  const context = () => engine.info.contextPerSequence;

  const fits = (promptTokens: number, data: GenerateJobData) =>
    promptTokens + data.max_tokens + CONTEXT_SAFETY_TOKENS <= context();
  const overflow = (message: string, details: Record<string, unknown>) =>
    new GembatchError('GB_ERR_CONTEXT_OVERFLOW', message, { details: { ...details, context: context() } });

  /** Tokens of `text`, a slice at a time with the event loop's turn between slices. */
  const countTokensInTurns = async (text: string): Promise<number> => {
    let tokens = 0;
    for (const slice of sliceText(text)) {
      await nextTurn();
      tokens += await engine.countTokens(slice);
    }
    return tokens;
  };

  /**
   * The prompt's tokens. A long text is counted apart from the template, in slices (off by a token
   * at most where the two meet; CONTEXT_SAFETY_TOKENS covers it), so no count holds the loop long.
   */
  const countPromptTokens = async (
    data: GenerateJobData,
    input: Pick<LoadedInput, 'text' | 'media'>,
  ): Promise<number> => {
    await nextTurn();
    if (input.text.length <= TOKENIZE_SLICE_CHARS) return engine.countPromptTokens(runner.request(data, input));
    return (
      (await engine.countPromptTokens(runner.request(data, { ...input, text: '' }))) +
      (await countTokensInTurns(input.text))
    );
  };

  const tooManyChunks = (chunks: number): void => {
    const maxChunks = deps.maxChunks ?? DEFAULT_MAX_CHUNKS_PER_JOB;
    if (chunks > maxChunks) {
      throw new GembatchError(
        'GB_ERR_INPUT_TOO_LARGE',
        `the input needs ${chunks} chunks of the ${context()}-token context; the limit is ${maxChunks} chunks per job (GEMBATCH_MAX_CHUNKS_PER_JOB)`,
        { details: { chunks, limit: maxChunks } },
      );
    }
  };

  /** The text as token-sized pieces (none when there is no text); one piece when it fits. */
  const planTextChunks = async (data: GenerateJobData, text: string): Promise<Array<{ text: string }>> => {
    if (text.trim().length === 0) return [];
    const promptTokens = await countPromptTokens(data, { text, media: [] });
    if (fits(promptTokens, data)) return [{ text }];
    const textTokens = await countTokensInTurns(text);
    const maxChunkTokens = context() - (promptTokens - textTokens) - data.max_tokens - CONTEXT_SAFETY_TOKENS;
    // A chunk must carry real content beyond the overlap, or the split never ends.
    if (maxChunkTokens <= deps.overlapTokens + 32)
      throw overflow(`max_tokens ${data.max_tokens} leaves no room for input in the ${context()}-token context`, {
        promptTokens,
      });
    // The task's definition says whether its chunks overlap (concatenated outputs would repeat one) and keep blank chunks.
    const chunking = runner.chunking(data);
    const overlap = chunking.overlap ? deps.overlapTokens : 0;
    // Refused before planning: planning reads every token (a megabyte of text costs seconds), and no fewer chunks than this can hold the text.
    tooManyChunks(Math.ceil((textTokens - overlap) / (maxChunkTokens - overlap)));
    // A chunk of blanks only (a run of spaces cut into pieces) adds nothing to a summary; as a child it
    // would fail GB_ERR_EMPTY_INPUT. Concatenated outputs keep every chunk, so their text stays whole.
    await nextTurn();
    const pieces = await deps.chunkText(text, maxChunkTokens, overlap);
    return (chunking.dropBlankChunks ? pieces.filter((piece) => piece.trim().length > 0) : pieces).map((piece) => ({
      text: piece,
    }));
  };

  /**
   * Consecutive runs of media parts (pages seen as images, audio segments) that each fit the
   * context, by each part's own token count; a part too big even alone cannot run.
   */
  const planMediaChunks = async (
    data: GenerateJobData,
    media: LoadedInput['media'],
  ): Promise<Array<{ media: number[] }>> => {
    if (media.length === 0) return [];
    const base = await engine.countPromptTokens(runner.request(data, { text: '', media: [] }));
    const groups: Array<{ media: number[] }> = [];
    let current: number[] = [];
    let tokens = base;
    for (const [index, part] of media.entries()) {
      const own = (await engine.countPromptTokens(runner.request(data, { text: '', media: [part] }))) - base;
      if (!fits(base + own, data))
        throw overflow(
          `one ${part.kind} needs ${own} tokens, more than the ${context()}-token context leaves after max_tokens ${data.max_tokens}`,
          { mediaTokens: own },
        );
      if (current.length > 0 && !fits(tokens + own, data)) {
        groups.push({ media: current });
        current = [];
        tokens = base;
      }
      current.push(index);
      tokens += own;
    }
    groups.push({ media: current });
    return groups;
  };

  return async (data, ctx) => {
    const input = await loadInput(data, blobs);
    const onToken = (n: number) => ctx.progress((n / data.max_tokens) * 100);
    const run = { signal: ctx.signal, onToken };

    if (data.chunk) {
      const outcome = await runner.run(data, input, run);
      ctx.log.info(
        { chunk: data.chunk.index, of: data.chunk.count, generatedTokens: outcome.stats.generatedTokens },
        'chunk done',
      );
      return { chunk: data.chunk.index, outcome } satisfies ChunkResult;
    }

    const promptTokens = await countPromptTokens(data, input);
    let outcome: TaskOutcome;
    let chunks = 1;
    if (fits(promptTokens, data)) {
      outcome = await runner.run(data, input, run);
    } else {
      const pieces = [...(await planTextChunks(data, input.text)), ...(await planMediaChunks(data, input.media))];
      tooManyChunks(pieces.length);
      chunks = pieces.length;
      const children = await Promise.all(
        pieces.map(async (piece, index) => {
          const slice =
            'text' in piece
              ? { text_sha256: (await blobs.put(Buffer.from(piece.text, 'utf8'))).sha256 }
              : { media_indexes: piece.media };
          const child: GenerateJobData = { ...data, chunk: { index, count: pieces.length, ...slice } };
          return { queue: ctx.queue, id: `${ctx.jobId}-chunk-${index}`, data: child };
        }),
      );
      ctx.log.info({ chunks: pieces.length, promptTokens }, 'input split into chunks');
      const outcomes = await ctx.awaitChildren<ChunkResult>(children);
      const partials: TaskOutcome[] = outcomes.map((o, index) => {
        if (!o.ok) {
          const error = decodeFailedReason(o.failedReason);
          throw new GembatchError(error.code, `chunk ${index + 1} of ${pieces.length} failed: ${error.message}`);
        }
        return o.value.outcome;
      });
      ctx.progress(90);
      outcome = await runner.reduce(data, partials, {
        signal: ctx.signal,
        contextTokens: context(),
        safetyTokens: CONTEXT_SAFETY_TOKENS,
      });
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
    const usage = {
      prompt_tokens: stats.promptTokens,
      generated_tokens: stats.generatedTokens,
      media_tokens: stats.mediaTokens,
    };
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
    ctx.log.info(
      { promptTokens: usage.prompt_tokens, generatedTokens: usage.generated_tokens, chunks, ms: timings.total_ms },
      'job generated',
    );
    return {
      result_sha256: sha256,
      usage,
      timings,
      finish_reason: stats.finishReason,
      node: deps.node,
      model: engine.info.model,
      chunks,
    };
  };
}
