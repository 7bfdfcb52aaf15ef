/** One PromQL query of a Grafana dashboard, with where it is (test helper). */
export interface DashboardExpression {
  where: string;
  expr: string;
}

interface PanelLike {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: PanelLike[];
}

/** Every panel target's `expr` (rows included), and the metric query of each `label_values` variable. */
export function dashboardExpressions(dashboard: unknown): DashboardExpression[] {
  const found: DashboardExpression[] = [];
  const visit = (panels: PanelLike[] | undefined): void => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? [])
        if (target.expr) found.push({ where: `panel "${panel.title ?? '?'}"`, expr: target.expr });
      visit(panel.panels);
    }
  };
  const board = dashboard as {
    panels?: PanelLike[];
    templating?: { list?: Array<{ name?: string; query?: unknown }> };
  };
  visit(board.panels);
  for (const variable of board.templating?.list ?? []) {
    const query =
      typeof variable.query === 'string' ? variable.query : (variable.query as { query?: string } | undefined)?.query;
    const metric = query ? /^label_values\(\s*([^,\s]+)\s*,/.exec(query)?.[1] : undefined;
    if (metric) found.push({ where: `variable $${variable.name ?? '?'}`, expr: metric });
  }
  return found;
}
