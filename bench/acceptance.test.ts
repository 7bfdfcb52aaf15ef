import { describe, expect, it } from 'vitest';
import { acceptance, type AcceptanceRow } from './acceptance.ts';

const row = (over: Partial<AcceptanceRow> & Pick<AcceptanceRow, 'target'>): AcceptanceRow => ({
  workload: 'distinct',
  phase: 'generate',
  jobs_s: 10,
  ...over,
});

describe('issue 13 acceptance of a bench:pipeline run', () => {
  it('takes each criterion’s median over the rounds, with its range, and says whether it is met', () => {
    const verdicts = acceptance([
      row({ target: 'engine', vs_llama_server: { tok_s: 0.9 } }),
      row({ target: 'engine', vs_llama_server: { tok_s: 1.1 } }),
      row({ target: 'engine', vs_llama_server: { tok_s: 1.05 } }),
    ]);
    expect(verdicts).toEqual([
      {
        criterion: 'distinct prompts against llama-server',
        target: 'engine',
        workload: 'distinct',
        phase: 'generate',
        median: 1.05,
        min: 0.9,
        max: 1.1,
        goal: '≥ 1×',
        met: true,
      },
    ]);
  });

  it('holds shared prompts to 1.5× llama-server, the pipeline to 0.9 of the engine and 100 one-token jobs/s', () => {
    const verdicts = acceptance([
      row({ target: 'stack', workload: 'shared', phase: 'one-token', jobs_s: 118, vs_llama_server: { tok_s: 1.4 } }),
      row({ target: 'stack', workload: 'shared', phase: 'one-token', jobs_s: 96, vs_engine: { tok_s: 0.91 } }),
    ]);
    expect(verdicts.map((v) => [v.criterion, v.median, v.goal, v.met])).toEqual([
      ['shared prompts against llama-server', 1.4, '≥ 1.5×', false],
      ['pipeline ÷ bare engine', 0.91, '≥ 0.9', true],
      // The upper middle of an even count, as bench:pipeline's own medians.
      ['one-token jobs/s through the pipeline', 118, '≥ 100', true],
    ]);
  });

  it('checks the engine’s inter-token p99 against its steady state, and leaves out what the run did not measure', () => {
    const verdicts = acceptance([
      row({ target: 'engine', itl_p99_ms: 5, itl_steady_ms: 2 }),
      row({ target: 'engine', phase: 'one-token' }),
      row({ target: 'llama-server' }),
    ]);
    expect(verdicts.map((v) => [v.criterion, v.median, v.met])).toEqual([
      ['inter-token p99 ÷ steady state', 2.5, false],
    ]);
  });
});
