import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from 'node-llama-cpp';
import type { StepClock } from './step-clock.ts';

/** Upper bounds of the tokens-per-decode histogram: powers of two up to a full 4096-token batch. */
const BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, Number.POSITIVE_INFINITY];

/**
 * Counts what node-llama-cpp decodes. It plugs in as the context's batch prioritization strategy,
 * which node-llama-cpp calls once per decode with exactly the items it is about to send; one item
 * is one sequence. It also decides how the batch is shared: every waiting sequence gets its next
 * token first (all of them move every step), and prompt tokens fill the rest evenly (see
 * {@link shareBatch}).
 */
export class DecodeCounters {
  readonly #activeSequences: () => number;
  readonly #clock: StepClock | undefined;
  calls = 0;
  tokens = 0;
  /** Decodes that carried every sequence that was generating at the time. */
  fullCalls = 0;
  readonly histogram = new Map<number, number>(BUCKETS.map((bound) => [bound, 0]));

  /**
   * @param activeSequences How many sequences are generating right now.
   * @param clock Told of every decode as it is dispatched and when it is done.
   */
  constructor(activeSequences: () => number, clock?: StepClock) {
    this.#activeSequences = activeSequences;
    this.#clock = clock;
  }

  /**
   * The strategy to pass as `batching.itemPrioritizationStrategy`. node-llama-cpp (patched, see the
   * package README) calls its `onDecoded` when the decode it planned is done, before sampling.
   */
  readonly strategy: CustomBatchingPrioritizationStrategy & { onDecoded: () => void } = Object.assign(
    ({ items, size }: Parameters<CustomBatchingPrioritizationStrategy>[0]) => this.#plan(items, size),
    { onDecoded: () => this.#clock?.decoded() },
  );

  #plan(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
    const planned: PrioritizedBatchItem[] = shareBatch(items, size).map(({ index, processAmount }) => ({
      item: items[index] as BatchItem,
      processAmount,
    }));
    const tokens = planned.reduce((sum, item) => sum + item.processAmount, 0);
    if (tokens > 0) {
      this.#record(planned.length, tokens);
      this.#clock?.dispatched();
    }
    return planned;
  }

  #record(sequences: number, tokens: number): void {
    this.calls++;
    this.tokens += tokens;
    if (sequences >= this.#activeSequences()) this.fullCalls++;
    const bucket = BUCKETS.find((bound) => tokens <= bound) as number;
    this.histogram.set(bucket, (this.histogram.get(bucket) ?? 0) + 1);
  }
}

/**
 * One token for every item first, then the remaining room shared evenly among the items with more
 * tokens (water-filling: each gets the same number, or all it has left if that is less).
 *
 * Why evenly and not in arrival order: node-llama-cpp creates the context with a non-unified KV
 * cache (one stream per sequence), and llama.cpp then cuts a batch into ubatches that give every
 * sequence in them the same number of tokens (`split_equal`), a new ubatch each time one of them
 * runs out. Arrival order fills a batch with whole prompts, then a remainder, then one token for
 * the rest (`1,45,...,46,3,1,1,1`: 4-6 ubatches, most of them small); sharing evenly gives
 * `32,32,...,32` (one ubatch of 16 x 32) and the next decode `14,...,14`.
 */
export function shareBatch(
  items: readonly { readonly tokens: ArrayLike<unknown> }[],
  size: number,
): Array<{ index: number; processAmount: number }> {
  let room = size;
  const amounts = items.map(() => 0);
  items.forEach((item, index) => {
    if (room > 0 && item.tokens.length > 0) {
      amounts[index] = 1;
      room--;
    }
  });
  const extra = items.map((item, index) => ((amounts[index] ?? 0) > 0 ? item.tokens.length - 1 : 0));
  const level = waterLevel(extra, room);
  return items.flatMap((_, index) => {
    const amount = (amounts[index] ?? 0) + Math.min(extra[index] ?? 0, level);
    return amount > 0 ? [{ index, processAmount: amount }] : [];
  });
}

/**
 * The highest level L with sum(min(wanted, L)) <= room (all of `wanted` when it fits). Room left
 * below the next level stays unused: giving it out would add a ubatch of one token per sequence.
 */
function waterLevel(wanted: readonly number[], room: number): number {
  const sorted = wanted.filter((w) => w > 0).sort((a, b) => a - b);
  let below = 0;
  for (let i = 0; i < sorted.length; i++) {
    const next = sorted[i] as number;
    const above = sorted.length - i;
    if (below + next * above > room) return Math.floor((room - below) / above);
    below += next;
  }
  return sorted.at(-1) ?? 0;
}
