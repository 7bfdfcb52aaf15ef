/**
 * The most tokens request `i` of a phase generates: `tokens` ± `spread` (64 ± 50 %: 32 to 96),
 * spread evenly, so every 64 consecutive requests ask for the same lengths with a mean of `tokens`
 * (± rounding) and every target of a bench gets the same requests. Why: with one length for all,
 * a wave of S jobs started together also ends together, so the next S join an idle batch and
 * evaluate their prompts with nothing decoding beside them: no job ever joined running
 * sequences, and the inter-token tail measured nothing of what chunked prefill is for (a
 * per-decode trace of 384 jobs: 24 prefill decodes of 16 × 32 and 16 × 15 tokens, none beside a
 * generating step). Real batches' answers differ in length. `tokens` below 2 and a spread of 0
 * give `tokens` for every request.
 */
export function requestTokens(tokens: number, spread: number, i: number): number {
  if (tokens < 2 || spread === 0) return tokens;
  const unit = ((i * 37) % 64) / 63; // 0..1, each of the 64 values once in 64 consecutive requests
  return Math.max(1, tokens + Math.round(tokens * spread * (2 * unit - 1)));
}
