// The production Grafana dashboard (Prometheus data source), from the same metric names the
// services declare and the alarm catalog's thresholds. A test checks every metric exists.
import { type Alarm, metricNames } from './alarms.js';

interface Panel {
  title: string;
  exprs: { expr: string; legend: string }[];
  unit: string;
  /** The alarm whose threshold is drawn on the panel, if any. */
  alarm?: string;
}

export const PANELS: readonly Panel[] = [
  {
    title: 'Commit → publish latency',
    exprs: [0.5, 0.95, 0.99].map((q) => ({ expr: `histogram_quantile(${q}, sum by (le) (rate(taskflow_router_commit_to_publish_seconds_bucket[5m])))`, legend: `p${q * 100}` })),
    unit: 's',
    alarm: 'TaskflowRealtimeLatency',
  },
  { title: 'Commit → Kinesis latency (capture)', exprs: [{ expr: 'histogram_quantile(0.95, sum by (le) (rate(taskflow_capture_commit_to_kinesis_seconds_bucket[5m])))', legend: 'p95' }], unit: 's' },
  { title: 'Capture lag', exprs: [{ expr: 'max(taskflow_capture_replication_lag_seconds)', legend: 'lag' }], unit: 's', alarm: 'TaskflowCaptureLag' },
  { title: 'Slot retained WAL', exprs: [{ expr: 'max(taskflow_capture_slot_retained_wal_bytes)', legend: 'retained' }], unit: 'bytes', alarm: 'TaskflowCaptureSlotRetainedWal' },
  { title: 'Iterator age per consumer', exprs: [{ expr: 'max by (consumer) (kinesis_consumer_millis_behind_latest)', legend: '{{consumer}}' }], unit: 'ms', alarm: 'TaskflowRouterIteratorAge' },
  {
    title: 'Dead letters per second',
    exprs: [
      { expr: 'sum(rate(taskflow_capture_dead_letters_total[5m]))', legend: 'capture' },
      { expr: 'sum by (reason) (rate(taskflow_router_dlq_total[5m]))', legend: 'router {{reason}}' },
      { expr: 'sum(rate(taskflow_search_dlq_total[5m]))', legend: 'search' },
      { expr: 'sum(rate(taskflow_audit_dlq_total[5m]))', legend: 'audit' },
      { expr: 'sum(rate(taskflow_archiver_dlq_total[5m]))', legend: 'archiver' },
    ],
    unit: 'ops',
  },
  { title: 'MQTT messages per change', exprs: [{ expr: 'sum(rate(taskflow_router_messages_published_total[5m])) / sum(rate(taskflow_router_changes_published_total[5m]))', legend: 'messages/change' }], unit: 'none' },
  {
    title: 'Changes through the pipeline',
    exprs: [
      { expr: 'sum(rate(taskflow_capture_events_total[1m]))', legend: 'captured' },
      { expr: 'sum(rate(taskflow_router_events_in_total[1m]))', legend: 'router in' },
      { expr: 'sum(rate(taskflow_router_changes_published_total[1m]))', legend: 'published' },
      { expr: 'sum(rate(taskflow_router_changes_without_subscriber_total[1m]))', legend: 'no live subscriber' },
    ],
    unit: 'ops',
  },
  { title: 'Hot workspaces', exprs: [{ expr: 'max(taskflow_capture_hot_workspaces)', legend: 'hot' }], unit: 'none', alarm: 'TaskflowCaptureHotWorkspace' },
  {
    title: 'Warehouse freshness and load backlog',
    exprs: [
      { expr: 'min(taskflow_warehouse_freshness_seconds)', legend: 'freshness (now − newest loaded commit)' },
      { expr: 'max(taskflow_loader_archive_oldest_pending_seconds)', legend: 'oldest unloaded object' },
    ],
    unit: 's',
    alarm: 'TaskflowWarehouseStale',
  },
  {
    title: 'Warehouse loads and data quality',
    exprs: [
      { expr: 'sum(rate(taskflow_loader_events_loaded_total{new="true"}[5m]))', legend: 'events loaded/s' },
      { expr: 'sum(rate(taskflow_loader_duplicates_dropped_total[5m]))', legend: 'duplicates dropped/s' },
      { expr: 'max(taskflow_loader_archive_objects_pending)', legend: 'objects pending' },
      { expr: 'sum by (check) (taskflow_dq_failing_rows)', legend: 'dq failing rows {{check}}' },
    ],
    unit: 'none',
  },
  { title: 'Publish retries per second', exprs: [{ expr: 'sum(rate(taskflow_router_publish_retries_total[5m]))', legend: 'retries' }], unit: 'ops', alarm: 'TaskflowRouterPublishRetries' },
];

/** The number an alerting expression compares against (`... > N`). */
export function prometheusThreshold(alarm: Alarm): number {
  const m = /[<>]=?\s*([0-9.e+]+)\s*$/.exec(alarm.prometheus.expr);
  if (!m?.[1]) throw new Error(`alarm ${alarm.id}: no threshold at the end of ${alarm.prometheus.expr}`);
  return Number(m[1]);
}

export function panelMetrics(): string[] {
  return [...new Set(PANELS.flatMap((p) => p.exprs.flatMap((e) => metricNames(e.expr))))];
}

export function grafanaDashboard(alarms: readonly Alarm[]): Record<string, unknown> {
  const byId = new Map(alarms.map((a) => [a.id, a]));
  return {
    title: 'TaskFlow change pipeline',
    uid: 'taskflow-pipeline',
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus' }] },
    panels: PANELS.map((p, i) => {
      const alarm = p.alarm ? byId.get(p.alarm) : undefined;
      if (p.alarm && !alarm) throw new Error(`panel ${p.title}: no alarm ${p.alarm}`);
      return {
        id: i + 1,
        type: 'timeseries',
        title: p.title,
        gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
        datasource: { type: 'prometheus', uid: '${datasource}' },
        targets: p.exprs.map((e, j) => ({ refId: String.fromCharCode(65 + j), expr: e.expr, legendFormat: e.legend })),
        fieldConfig: {
          defaults: {
            unit: p.unit,
            ...(alarm ? { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: prometheusThreshold(alarm) }] }, custom: { thresholdsStyle: { mode: 'line' } } } : {}),
          },
        },
        ...(alarm ? { description: `Alarm ${alarm.id}: runbooks/${alarm.runbook}` } : {}),
      };
    }),
  };
}
