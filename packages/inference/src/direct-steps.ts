import type { LlamaContextSequence, LlamaGrammarEvaluationState, Token, TokenBias } from 'node-llama-cpp';
import { GembatchError } from '@gembatch/contracts';

/** A sampler made by the patched `_createSampler` (node-llama-cpp's internal `LlamaSampler`). */
interface PatchedSampler {
  readonly disposed: boolean;
  dispose(): void;
}

/** What the patched `_createSampler` applies: `evaluate()`'s options of the same names. */
interface SamplerOptions {
  temperature: number;
  tokenBias?: TokenBias;
  grammarEvaluationState?: LlamaGrammarEvaluationState;
}

/** The two methods the gembatch patch adds to `LlamaContextSequence` (see the package README). */
interface PatchedSequence {
  _decodeAndSample(tokens: readonly Token[], sampler: PatchedSampler): Promise<Token>;
  _createSampler(options: SamplerOptions): PatchedSampler;
}

/**
 * What the engine asks of a sequence's generation: greedy or tempered sampling, optionally a token
 * bias, optionally a grammar that constrains the tokens while `active()` says so (not inside a
 * thought, which a model writes freely before its structured answer).
 */
export interface DirectStepOptions {
  temperature: number;
  tokenBias?: TokenBias;
  grammar?: { state: LlamaGrammarEvaluationState; active: () => boolean };
}

/**
 * Generates on a sequence one decode step at a time, as `sequence.evaluate()`'s iterator does but
 * through the patched `_decodeAndSample`: each step is one decode queued in the context with the
 * other sequences' (so lock-step batching, chunked prefill and the step clock see no difference)
 * and one sample, with the sampler configured once per job. node-llama-cpp's per-token path
 * (an async generator step, two locks, the sampler configuration resolved and passed through
 * N-API again) cost a quarter of a decode step on the tiny models: `pnpm bench:decode-loop`.
 *
 * A grammar needs no per-token configuration either: its state lives in node-llama-cpp's native
 * grammar evaluation state, which the native sampler advances with every token it samples. Only
 * when the grammar is switched on or off (a thought closes or opens) is the sampler replaced by one
 * configured with or without it, as `evaluate()` would resolve its `grammarEvaluationState`
 * function for that token. No repeat penalties and no token predictor here.
 */
export class DirectSteps implements AsyncIterator<Token, void> {
  readonly #sequence: LlamaContextSequence;
  readonly #patched: PatchedSequence;
  readonly #options: DirectStepOptions;
  #sampler: PatchedSampler;
  /** Whether the current sampler applies the grammar. */
  #grammarOn: boolean;
  /** Tokens the next step decodes: the prompt's tail, then each sampled token. */
  #pending: readonly Token[];
  /** The last step (in flight or settled), so that the sampler is disposed only after its sample. */
  #lastStep: Promise<Token> | undefined;
  #done = false;

  constructor(sequence: LlamaContextSequence, tail: readonly Token[], options: DirectStepOptions) {
    this.#sequence = sequence;
    this.#patched = sequence as unknown as PatchedSequence;
    this.#options = options;
    this.#grammarOn = options.grammar?.active() ?? false;
    this.#sampler = this.#createSampler();
    this.#pending = tail;
  }

  #createSampler(): PatchedSampler {
    const { temperature, tokenBias, grammar } = this.#options;
    return this.#patched._createSampler({
      temperature,
      ...(tokenBias ? { tokenBias } : {}),
      ...(this.#grammarOn && grammar ? { grammarEvaluationState: grammar.state } : {}),
    });
  }

  /**
   * Decodes what is pending and samples the next token. Not an async method: it runs for every
   * generated token of every sequence, and an async call allocates its own state and continuation.
   */
  next(): Promise<IteratorResult<Token, void>> {
    if (this.#done) return Promise.resolve({ done: true, value: undefined });
    // As the engine's context-shift strategy refuses for evaluate(): a sequence never shifts out tokens.
    if (this.#sequence.nextTokenIndex + this.#pending.length > this.#sequence.contextSize - 1)
      return Promise.reject(new GembatchError('GB_ERR_CONTEXT_OVERFLOW', 'the sequence ran out of context'));
    // next() is called once the previous step has settled, so the old sampler's sample is done.
    if (this.#options.grammar !== undefined && this.#options.grammar.active() !== this.#grammarOn) {
      this.#grammarOn = !this.#grammarOn;
      this.#sampler.dispose();
      this.#sampler = this.#createSampler();
    }
    this.#lastStep = this.#patched._decodeAndSample(this.#pending, this.#sampler);
    return this.#lastStep.then(this.#sampled);
  }

  /** The step's token is what the next step decodes. */
  readonly #sampled = (token: Token): IteratorResult<Token, void> => {
    this.#pending = [token];
    return { done: false, value: token };
  };

  /** Ends the generation; the sampler goes once the step in flight, if any, is done. */
  async return(): Promise<IteratorResult<Token, void>> {
    if (!this.#done) {
      this.#done = true;
      await this.#lastStep?.then(settled, settled);
      this.#sampler.dispose();
    }
    return { done: true, value: undefined };
  }
}

const settled = (): void => undefined;
