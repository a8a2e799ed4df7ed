import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { prometheusAuditMetrics } from '../audit/metrics.js';
import { prometheusCaptureMetrics } from '../capture/metrics.js';
import { prometheusGdprMetrics } from '../gdpr/metrics.js';
import { prometheusConsumerMetrics } from '@taskflow/stream';
import { prometheusRouterMetrics } from '../router/metrics.js';
import { prometheusNotificationMetrics } from '../notifications/metrics.js';
import { prometheusSearchMetrics } from '../search/metrics.js';
import { prometheusArchiverMetrics, prometheusLoaderMetrics } from '../analytics/metrics.js';
import { HEALTH_METRICS } from '../clients/demo-board/health.js';
import { prometheusAuthorizerMetrics } from '../lib/authorizer-metrics.js';
import { alarms, metricNames, prometheusRules } from './alarms.js';
import { grafanaDashboard, PANELS, panelMetrics, prometheusThreshold } from './dashboard.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runbooksDir = join(root, 'runbooks');
const list = alarms({ streamName: 'taskflow-changes', authorizerFunctionName: 'taskflow-prod-iot-authorizer', broker: 'self-hosted' });

/** Every metric name the services declare, from their own registries. */
function declaredMetrics(): Set<string> {
  const registry = new Registry();
  prometheusCaptureMetrics(registry);
  prometheusRouterMetrics(registry);
  prometheusAuditMetrics(registry);
  prometheusSearchMetrics(registry);
  prometheusArchiverMetrics(registry);
  prometheusLoaderMetrics(registry);
  prometheusNotificationMetrics(registry);
  prometheusAuthorizerMetrics(registry);
  prometheusGdprMetrics(registry);
  const consumer = prometheusConsumerMetrics(registry, 'router', 'w1');
  consumer.iteratorAge('shard-0', 0);
  return new Set(registry.getMetricsAsArray().map((m) => m.name));
}

describe('alarm catalog', () => {
  const pages = readdirSync(runbooksDir).filter((f) => f.endsWith('.md') && f !== 'README.md');

  it('every alarm has a runbook page that names it, and is listed in the runbook index', () => {
    const index = readFileSync(join(runbooksDir, 'README.md'), 'utf8');
    for (const a of list) {
      expect(pages).toContain(a.runbook);
      expect(readFileSync(join(runbooksDir, a.runbook), 'utf8')).toContain(`\`${a.id}\``);
      expect(index).toContain(`\`${a.id}\``);
    }
  });

  it('every runbook page is named by an alarm', () => {
    for (const page of pages) expect(list.filter((a) => a.runbook === page).map((a) => a.id)).not.toEqual([]);
  });

  it('alarm ids are unique', () => {
    expect(new Set(list.map((a) => a.id)).size).toBe(list.length);
  });

  it('every metric an alarm reads is one the services declare', () => {
    const declared = declaredMetrics();
    for (const a of list) {
      for (const name of metricNames(a.prometheus.expr)) expect({ alarm: a.id, name, declared: declared.has(name) }).toEqual({ alarm: a.id, name, declared: true });
      if (a.cloudwatch.namespace === 'TaskFlow') expect({ alarm: a.id, name: a.cloudwatch.metricName, declared: declared.has(a.cloudwatch.metricName) }).toMatchObject({ declared: true });
    }
  });

  it('finds metric names in expressions, without functions, labels or histogram suffixes', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{x="y"}[5m]))) > 1.5')).toEqual(['a_seconds']);
    expect(metricNames('sum(rate(a_total[5m])) / sum(rate(b_total[5m]))')).toEqual(['a_total', 'b_total']);
    expect(metricNames('max by (consumer) (c_ms)')).toEqual(['c_ms']);
    expect(prometheusThreshold({ ...list[0]!, prometheus: { expr: 'max(x) > 30', forMinutes: 1 } })).toBe(30);
  });

  it('infra/prometheus/alerts.yml is the catalog rendered (regenerate: taskflow infra prometheus-rules)', () => {
    const kept = readFileSync(join(root, 'infra/prometheus/alerts.yml'), 'utf8');
    expect(kept).toBe(prometheusRules(list));
    for (const a of list) expect(kept).toContain(`runbook: "runbooks/${a.runbook}"`);
  });
});

describe('Grafana dashboard', () => {
  it('every panel reads metrics the services declare', () => {
    const declared = declaredMetrics();
    const missing = panelMetrics().filter((m) => !declared.has(m));
    expect(missing).toEqual([]);
    expect(PANELS.length).toBeGreaterThan(5);
  });

  it('charts every service metric the local health page charts (the board’s own browser latency aside), and the services declare them', () => {
    const declared = declaredMetrics();
    const health = Object.entries(HEALTH_METRICS).flatMap(([k, v]) => (k === 'commitToClient' ? [] : typeof v === 'string' ? [v] : [...v]));
    expect(health.filter((m) => !declared.has(m))).toEqual([]);
    expect(health.filter((m) => !panelMetrics().includes(m))).toEqual([]);
  });

  it('infra/prometheus/grafana-dashboard.json is the one built from the panels (regenerate: taskflow infra grafana)', () => {
    const kept = JSON.parse(readFileSync(join(root, 'infra/prometheus/grafana-dashboard.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    expect(kept).toEqual(grafanaDashboard(list));
    expect(kept.panels.flatMap((p) => p.targets.map((t) => t.expr))).toEqual(PANELS.flatMap((p) => p.exprs.map((e) => e.expr)));
  });
});
