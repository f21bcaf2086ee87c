// The dashboard and the alert rules in infra/observability may name only metrics a node
// really exports: every name their PromQL uses is looked up in the /metrics of live
// plexus and nats nodes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startCluster } from '../src/index.js';

const INFRA = fileURLToPath(new URL('../../../infra/observability/', import.meta.url));
const KEYWORDS = new Set(['by', 'without', 'or', 'and', 'unless', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'le']);

/** The metric names a PromQL expression reads: identifiers that are not functions, keywords or labels. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)?\b/g, '') // numbers and durations
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ''); // label lists
  const out = new Set<string>();
  for (const m of bare.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || KEYWORDS.has(name as string) || /^\d/.test(name as string)) continue;
    out.add(name as string);
  }
  return [...out];
}

/** Every series name a /metrics text exposes, histograms with their _bucket, _sum and _count. */
async function exported(url: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const f of parsePrometheusTextFormat(await (await fetch(`${url}/metrics`)).text())) {
    names.add(f.name);
    if (f.type === 'HISTOGRAM' || f.type === 'SUMMARY') for (const s of ['_bucket', '_sum', '_count']) names.add(`${f.name}${s}`);
  }
  return names;
}

describe('observability assets', () => {
  const live = new Set<string>();
  beforeAll(async () => {
    for (const transport of ['plexus', 'nats'] as const) {
      const c = await startCluster({ nodes: 2, transport });
      try {
        await fetch(`${c.nodes[0]?.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"a"}' });
        for (const n of c.nodes) for (const name of await exported(n.url)) live.add(name);
      } finally {
        await c.stop();
      }
    }
  }, 120_000);

  const alerts = (parse(readFileSync(`${INFRA}alerts.yaml`, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
  const dashboard = JSON.parse(readFileSync(`${INFRA}grafana-dashboard.json`, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[]; templating: { list: { query: unknown }[] } };

  it('reads metric names out of PromQL', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, route) (rate(x_bucket{a="b"}[5m]))) > 2 or y_total offset 5m')).toEqual(['x_bucket', 'y_total']);
  });

  it('every alert rule uses only exported metrics', () => {
    expect(alerts.length).toBeGreaterThan(4);
    for (const r of alerts) for (const name of metricNames(r.expr)) expect(live.has(name), `${r.alert}: ${name}`).toBe(true);
  });

  it('every dashboard panel uses only exported metrics', () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => [p.title, t.expr] as const));
    expect(exprs.length).toBeGreaterThan(10);
    for (const [title, expr] of exprs) for (const name of metricNames(expr)) expect(live.has(name), `${title}: ${name}`).toBe(true);
    for (const v of dashboard.templating.list) {
      const m = /label_values\((\w+)/.exec(String(v.query));
      if (m) expect(live.has(m[1] as string), `template: ${m[1]}`).toBe(true);
    }
  });
});
