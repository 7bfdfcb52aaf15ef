import { createHash } from 'node:crypto';
import {
  Gemma4ChatWrapper,
  isLlamaText,
  LlamaText,
  resolveChatWrapper,
  SpecialTokensText,
  type ChatHistoryItem,
  type ChatWrapper,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import type { GenerateRequest } from './engine.ts';
import { LruMap } from './lru-map.ts';

/**
 * Prompts whose tokens are kept. Why 64: a worker counts a job's prompt (admission, chunking) and
 * then generates it, with up to a few sequences' worth of jobs prefetched in between; a
 * 500-token prompt takes ~0.7 ms to tokenize on a CPU core, each kept one ~2 KB of memory.
 */
const BUILT_PROMPTS_KEPT = 64;

/** How prompts are built: see {@link PromptFormat.for}. */
export type PromptMode = 'auto' | 'gemma4' | 'completion';

/** Markers around a thought segment, as text with special tokens rendered. */
export interface ThoughtMarkers {
  prefix: string;
  suffix: string;
}

/** A request turned into prompt tokens plus what ends and structures the answer. */
export interface PromptPlan {
  tokens: Token[];
  /** Texts that end generation (end-of-generation tokens end it too). */
  stopTriggers: string[];
  /** Thought segment markers, when the chat template has them. */
  thought: ThoughtMarkers | undefined;
  /** The prompt opened a thought (thinking before structured output): generation starts inside it. */
  startsInThought: boolean;
}

/** Renders a LlamaText as text with special tokens written out; `undefined` for bare special tokens (EOS, EOT). */
function renderText(text: LlamaText): string | undefined {
  let out = '';
  for (const value of text.values) {
    if (typeof value === 'string') out += value;
    else if (value instanceof SpecialTokensText) out += value.value;
    else return undefined;
  }
  return out === '' ? undefined : out;
}

/**
 * Builds prompts: the model's chat template through node-llama-cpp's chat wrappers (Gemma 4's
 * thinking switched per request), or plain completion text for a model without a template.
 */
export class PromptFormat {
  readonly #model: LlamaModel;
  readonly #wrapper: ChatWrapper | undefined;
  /** Built prompts by a digest of what shapes them (no text kept as a key): counted once, generated without tokenizing again. */
  readonly #built = new LruMap<string, PromptPlan>(BUILT_PROMPTS_KEPT);

  private constructor(model: LlamaModel, wrapper: ChatWrapper | undefined) {
    this.#model = model;
    this.#wrapper = wrapper;
  }

  /**
   * `auto`: chat mode through the wrapper node-llama-cpp resolves when the GGUF carries a chat
   * template, completion mode otherwise; `gemma4` forces Gemma 4's template; `completion` forces
   * plain completion.
   */
  static for(model: LlamaModel, mode: PromptMode = 'auto'): PromptFormat {
    if (mode === 'completion') return new PromptFormat(model, undefined);
    if (mode === 'gemma4') return new PromptFormat(model, new Gemma4ChatWrapper());
    const template = model.fileInfo.metadata.tokenizer?.chat_template;
    if (typeof template !== 'string' || template.trim() === '') return new PromptFormat(model, undefined);
    return new PromptFormat(model, resolveChatWrapper(model) ?? undefined);
  }

  /** Whether prompts go through a chat template. */
  get chat(): boolean {
    return this.#wrapper !== undefined;
  }

  /** Name of the chat wrapper in use, or `completion`. */
  get name(): string {
    return this.#wrapper?.wrapperName ?? 'completion';
  }

  /**
   * The request's prompt tokens. The order is system, instruction, then the input (the only
   * per-document part), then the fixed completion cue, so jobs of one task share every token
   * up to the input and the engine's prefix reuse evaluates that part once per sequence.
   */
  build(request: Omit<GenerateRequest, 'maxTokens'>, extraStopTriggers: readonly string[] = []): PromptPlan {
    const { prompt, input } = request;
    const key = createHash('sha256')
      .update(
        JSON.stringify([
          prompt.system,
          prompt.instruction,
          prompt.completionCue,
          input,
          request.thinking === true,
          request.jsonSchema !== undefined,
        ]),
      )
      .digest('base64');
    let plan = this.#built.get(key);
    if (!plan) {
      plan = this.#tokenize(request);
      this.#built.set(key, plan);
    }
    // Copies: a caller may change its plan; the kept one stays as built.
    return {
      ...plan,
      tokens: [...plan.tokens],
      stopTriggers: [...new Set([...plan.stopTriggers, ...extraStopTriggers])],
    };
  }

  #tokenize(request: Omit<GenerateRequest, 'maxTokens'>): PromptPlan {
    const { prompt, input } = request;
    if (!this.#wrapper) {
      const text =
        [prompt.system, prompt.instruction, input].filter((part) => part.trim() !== '').join('\n\n') +
        prompt.completionCue;
      const bos = this.#model.tokens.bos;
      const tokens = this.#model.tokenize(text, false);
      return {
        tokens: bos !== null && this.#model.tokens.shouldPrependBosToken ? [bos, ...tokens] : tokens,
        stopTriggers: [],
        thought: undefined,
        startsInThought: false,
      };
    }
    const wrapper =
      this.#wrapper instanceof Gemma4ChatWrapper
        ? new Gemma4ChatWrapper({ reasoning: request.thinking === true })
        : this.#wrapper;
    const user = [prompt.instruction, input].filter((part) => part.trim() !== '').join('\n\n');
    const history: ChatHistoryItem[] = [];
    if (prompt.system.trim() !== '' && wrapper.settings.supportsSystemMessages)
      history.push({ type: 'system', text: prompt.system });
    history.push({
      type: 'user',
      text:
        wrapper.settings.supportsSystemMessages || prompt.system.trim() === '' ? user : `${prompt.system}\n\n${user}`,
    });
    history.push({ type: 'model', response: [] });
    const state = wrapper.generateContextState({ chatHistory: history });
    const segment = wrapper.settings.segments?.thought;
    const prefix =
      segment && (typeof segment.prefix === 'string' || isLlamaText(segment.prefix))
        ? renderText(LlamaText(segment.prefix))
        : undefined;
    const suffix = segment?.suffix !== undefined ? renderText(LlamaText(segment.suffix)) : undefined;
    const thought = prefix !== undefined && suffix !== undefined ? { prefix, suffix } : undefined;
    // Thinking before a structured answer: open the thought ourselves, so the grammar can take over
    // exactly where it closes.
    const startsInThought = thought !== undefined && request.thinking === true && request.jsonSchema !== undefined;
    const tokens = state.contextText.tokenize(this.#model.tokenizer);
    if (startsInThought && thought) tokens.push(...this.#model.tokenize(thought.prefix, true));
    const stopTriggers = state.stopGenerationTriggers.map(renderText).filter((t): t is string => t !== undefined);
    return { tokens, stopTriggers, thought, startsInThought };
  }
}
