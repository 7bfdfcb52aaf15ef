import { median } from './median.ts';

/** What the acceptance check reads of one `bench:pipeline` row (one target, workload, phase and round). */
export interface AcceptanceRow {
  target: string;
  workload: 'distinct' | 'shared';
  phase: 'generate' | 'one-token';
  jobs_s: number;
  itl_p99_ms?: number;
  itl_steady_ms?: number;
  vs_llama_server?: { tok_s: number };
  vs_engine?: { tok_s: number };
}

/** One line of the verdict: a criterion of issue 13, a measured median (with its range) and whether it is met. */
export interface Verdict {
  criterion: string;
  target: string;
  workload: string;
  phase: string;
  median: number;
  min: number;
  max: number;
  goal: string;
  met: boolean;
}

/** Rows grouped by target, workload and phase (one group holds a phase's rounds), in first-seen order. */
export function byTargetWorkloadPhase<R extends Pick<AcceptanceRow, 'target' | 'workload' | 'phase'>>(
  rows: readonly R[],
): Map<string, R[]> {
  const groups = new Map<string, R[]>();
  for (const row of rows) {
    const key = `${row.target}|${row.workload}|${row.phase}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  return groups;
}

/** Issue 13's targets, as `bench:pipeline` can measure them in one run. */
export const GOALS = {
  distinctVsServer: 1.0,
  sharedVsServer: 1.5,
  stackVsEngine: 0.9,
  sharedOneTokenJobsPerSecond: 100,
  p99OverSteady: 2,
} as const;

const PIPELINE_TARGETS = ['stack', 'batch'];
const OURS = ['engine', ...PIPELINE_TARGETS];

/**
 * Issue 13's acceptance criteria against a run's rows, each a median over its rounds. Ratios to
 * llama-server need it in the run (`--llama-server`), stack ÷ engine needs both targets; criteria
 * a run cannot measure are left out. Prompt tokens with reuse off, `bench:engine` and
 * `bench:extract` are other commands.
 */
export function acceptance(rows: readonly AcceptanceRow[]): Verdict[] {
  const verdicts: Verdict[] = [];
  const groups = byTargetWorkloadPhase(rows);
  const add = (
    criterion: string,
    group: readonly AcceptanceRow[],
    values: number[],
    goal: string,
    isMet: (m: number) => boolean,
  ) => {
    const first = group[0];
    if (!first || values.length === 0) return;
    const m = median(values);
    verdicts.push({
      criterion,
      target: first.target,
      workload: first.workload,
      phase: first.phase,
      median: m,
      min: Math.min(...values),
      max: Math.max(...values),
      goal,
      met: isMet(m),
    });
  };
  const defined = (xs: Array<number | undefined>) => xs.filter((x): x is number => x !== undefined);

  for (const group of groups.values()) {
    const { target, workload, phase } = group[0] as AcceptanceRow;
    if (OURS.includes(target)) {
      const goal = workload === 'distinct' ? GOALS.distinctVsServer : GOALS.sharedVsServer;
      add(
        `${workload} prompts against llama-server`,
        group,
        defined(group.map((r) => r.vs_llama_server?.tok_s)),
        `≥ ${goal}×`,
        (m) => m >= goal,
      );
    }
    if (PIPELINE_TARGETS.includes(target))
      add(
        'pipeline ÷ bare engine',
        group,
        defined(group.map((r) => r.vs_engine?.tok_s)),
        `≥ ${GOALS.stackVsEngine}`,
        (m) => m >= GOALS.stackVsEngine,
      );
    if (PIPELINE_TARGETS.includes(target) && workload === 'shared' && phase === 'one-token')
      add(
        'one-token jobs/s through the pipeline',
        group,
        group.map((r) => r.jobs_s),
        `≥ ${GOALS.sharedOneTokenJobsPerSecond}`,
        (m) => m >= GOALS.sharedOneTokenJobsPerSecond,
      );
    if (target === 'engine' && phase === 'generate')
      add(
        'inter-token p99 ÷ steady state',
        group,
        defined(
          group.map((r) =>
            r.itl_p99_ms !== undefined && r.itl_steady_ms ? r.itl_p99_ms / r.itl_steady_ms : undefined,
          ),
        ),
        `≤ ${GOALS.p99OverSteady}`,
        (m) => m <= GOALS.p99OverSteady,
      );
  }
  return verdicts;
}
