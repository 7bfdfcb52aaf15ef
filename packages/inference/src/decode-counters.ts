import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from 'node-llama-cpp';

/** Upper bounds of the tokens-per-decode histogram: powers of two up to a full 4096-token batch. */
const BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, Number.POSITIVE_INFINITY];

/**
 * Counts what node-llama-cpp decodes. It plugs in as the context's batch prioritization strategy,
 * which node-llama-cpp calls once per decode with exactly the items it is about to send; one item
 * is one sequence. It also decides how the batch is shared: every waiting sequence gets its next
 * token first (all of them move every step), and prompt tokens fill the rest in arrival order.
 */
export class DecodeCounters {
  readonly #activeSequences: () => number;
  calls = 0;
  tokens = 0;
  /** Decodes that carried every sequence that was generating at the time. */
  fullCalls = 0;
  readonly histogram = new Map<number, number>(BUCKETS.map((bound) => [bound, 0]));

  /** @param activeSequences How many sequences are generating right now. */
  constructor(activeSequences: () => number) {
    this.#activeSequences = activeSequences;
  }

  /** The strategy to pass as `batching.itemPrioritizationStrategy`. */
  readonly strategy: CustomBatchingPrioritizationStrategy = ({ items, size }) => {
    const planned = shareBatch(items, size);
    const tokens = planned.reduce((sum, item) => sum + item.processAmount, 0);
    if (tokens > 0) this.#record(planned.length, tokens);
    return planned;
  };

  #record(sequences: number, tokens: number): void {
    this.calls++;
    this.tokens += tokens;
    if (sequences >= this.#activeSequences()) this.fullCalls++;
    const bucket = BUCKETS.find((bound) => tokens <= bound) as number;
    this.histogram.set(bucket, (this.histogram.get(bucket) ?? 0) + 1);
  }
}

/** One token for every item first, then the remaining room to prompt items in arrival order. */
function shareBatch(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  let room = size;
  const amounts = items.map(() => 0);
  items.forEach((item, index) => {
    if (room > 0 && item.tokens.length > 0) {
      amounts[index] = 1;
      room--;
    }
  });
  items.forEach((item, index) => {
    const extra = Math.min(room, item.tokens.length - (amounts[index] ?? 0));
    if (extra > 0) {
      amounts[index] = (amounts[index] ?? 0) + extra;
      room -= extra;
    }
  });
  return items.flatMap((item, index) => ((amounts[index] ?? 0) > 0 ? [{ item, processAmount: amounts[index] ?? 0 }] : []));
}
