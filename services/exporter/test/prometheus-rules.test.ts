import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, hasCommand } from './repo-paths.ts';
import { substituteGrafanaVariables } from './promql-names.ts';
import { dashboardExpressions } from './dashboard-queries.ts';

const PROMTOOL = hasCommand('promtool');
if (!PROMTOOL)
  console.warn(
    'promtool not found: skipping Prometheus config and rule checks (apt-get install prometheus, or make system-deps)',
  );

function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd: REPO_ROOT, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe.skipIf(!PROMTOOL)('Prometheus config and alerts (promtool)', () => {
  it('prometheus.yml and the rule files it loads are valid', () => {
    const result = promtool('check', 'config', 'infra/prometheus/prometheus.yml');
    expect(result.output).toContain('SUCCESS');
    expect(result.status, result.output).toBe(0);
  });

  it('alerts.yml is valid', () => {
    const result = promtool('check', 'rules', 'infra/prometheus/alerts.yml');
    expect(result.status, result.output).toBe(0);
  });

  it('the alerts pass their unit tests', () => {
    const result = promtool('test', 'rules', 'infra/prometheus/alerts.test.yml');
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
  });

  it("every dashboard query is valid PromQL (as Prometheus parses it, with Grafana's variables filled in)", async () => {
    const dashboard = JSON.parse(
      await readFile(join(REPO_ROOT, 'infra/grafana/dashboards/gembatch-fleet.json'), 'utf8'),
    ) as unknown;
    const expressions = dashboardExpressions(dashboard);
    expect(expressions.length).toBeGreaterThan(10);
    const dir = await mkdtemp(join(tmpdir(), 'gembatch-promql-'));
    try {
      // Each query as a recording rule: `promtool check rules` parses every expression.
      const rules = expressions
        .map(
          ({ expr }, index) =>
            `      - record: dashboard:query_${index}\n        expr: ${JSON.stringify(substituteGrafanaVariables(expr))}`,
        )
        .join('\n');
      await writeFile(join(dir, 'dashboard-rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
      const result = promtool('check', 'rules', join(dir, 'dashboard-rules.yml'));
      expect(result.status, result.output).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
