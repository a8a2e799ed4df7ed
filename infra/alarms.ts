// Every paging condition, once: each alarm names its runbook page and becomes both a CloudWatch
// alarm (infra/aws, observability stack) and a Prometheus alerting rule (infra/prometheus).
// A test fails when an alarm has no runbook, a runbook page is named by no alarm, or a metric is
// not one the services declare.

export interface Alarm {
  /** Alarm name in both systems. */
  id: string;
  /** File under runbooks/. */
  runbook: string;
  summary: string;
  /** Prometheus: the alerting expression and how long it must hold. */
  prometheus: { expr: string; forMinutes: number };
  /**
   * CloudWatch: the same condition on the service metric shipped under the same name (namespace
   * TaskFlow, by the CloudWatch agent's Prometheus scrape), or on AWS's own metric where AWS
   * measures the same thing.
   */
  cloudwatch: {
    namespace: string;
    metricName: string;
    dimensions?: Record<string, string>;
    statistic: string;
    threshold: number;
    periodSeconds: number;
    evaluationPeriods: number;
  };
}

export const SERVICE_NAMESPACE = 'TaskFlow';
const GIB = 1024 ** 3;

export function alarms(opts: { streamName: string; authorizerFunctionName: string; broker: 'self-hosted' | 'iot-core' }): Alarm[] {
  // The authorizer is the broker nodes' hooks with the self-hosted tier (their metrics, shipped
  // like every service's), the IoT custom authorizer Lambda with IoT Core (AWS/Lambda's own).
  const selfHosted = opts.broker === 'self-hosted';
  return [
    {
      id: 'TaskflowCaptureSlotRetainedWal',
      runbook: 'capture-slot-retained-wal.md',
      summary: 'The capture slot keeps more than 20 GiB of WAL on the source database',
      prometheus: { expr: `max(taskflow_capture_slot_retained_wal_bytes) > ${20 * GIB}`, forMinutes: 10 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_capture_slot_retained_wal_bytes', statistic: 'Maximum', threshold: 20 * GIB, periodSeconds: 60, evaluationPeriods: 10 },
    },
    {
      id: 'TaskflowCaptureLag',
      runbook: 'capture-lag.md',
      summary: 'Capture is more than 30 s behind the database commits',
      prometheus: { expr: 'max(taskflow_capture_replication_lag_seconds) > 30', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_capture_replication_lag_seconds', statistic: 'Maximum', threshold: 30, periodSeconds: 60, evaluationPeriods: 5 },
    },
    {
      id: 'TaskflowCaptureHotWorkspace',
      runbook: 'capture-hot-workspace.md',
      summary: "A workspace is at or over the hot threshold of its shard's write limit",
      prometheus: { expr: 'max(taskflow_capture_hot_workspaces) > 0', forMinutes: 10 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_capture_hot_workspaces', statistic: 'Maximum', threshold: 0, periodSeconds: 60, evaluationPeriods: 10 },
    },
    {
      id: 'TaskflowCaptureDeadLetters',
      runbook: 'dead-letters.md',
      summary: 'Capture is putting changes in the dead-letter store',
      prometheus: { expr: 'sum(rate(taskflow_capture_dead_letters_total[5m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_capture_dead_letters_total', statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowRouterDeadLetters',
      runbook: 'dead-letters.md',
      summary: 'The router is putting records in the dead-letter store',
      prometheus: { expr: 'sum(rate(taskflow_router_dlq_total[5m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_router_dlq_total', statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowRouterIteratorAge',
      runbook: 'router-iterator-age.md',
      summary: 'The router reads a shard more than 10 s behind its tip',
      prometheus: { expr: 'max(kinesis_consumer_millis_behind_latest{consumer="router"}) > 10000', forMinutes: 5 },
      // The router reads by enhanced fan-out in production: Kinesis reports its lag per consumer.
      cloudwatch: { namespace: 'AWS/Kinesis', metricName: 'SubscribeToShardEvent.MillisBehindLatest', dimensions: { StreamName: opts.streamName, ConsumerName: 'router' }, statistic: 'Maximum', threshold: 10_000, periodSeconds: 60, evaluationPeriods: 5 },
    },
    {
      id: 'TaskflowStreamReadThrottled',
      runbook: 'stream-read-throttled.md',
      summary: "Kinesis refuses a stream reader's GetRecords calls: the shard's polling readers overspend its 5 calls/s or 2 MB/s",
      prometheus: { expr: 'max(sum by (consumer) (rate(kinesis_consumer_read_throttled_total[5m]))) > 0.1', forMinutes: 10 },
      // AWS counts the same refusals per stream (every polling reader together).
      cloudwatch: { namespace: 'AWS/Kinesis', metricName: 'ReadProvisionedThroughputExceeded', dimensions: { StreamName: opts.streamName }, statistic: 'Sum', threshold: 6, periodSeconds: 60, evaluationPeriods: 10 },
    },
    {
      id: 'TaskflowRealtimeLatency',
      runbook: 'realtime-latency.md',
      summary: 'p95 commit-to-publish latency is over 1.5 s',
      prometheus: { expr: 'histogram_quantile(0.95, sum by (le) (rate(taskflow_router_commit_to_publish_seconds_bucket[5m]))) > 1.5', forMinutes: 10 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_router_commit_to_publish_seconds', statistic: 'p95', threshold: 1.5, periodSeconds: 60, evaluationPeriods: 10 },
    },
    {
      id: 'TaskflowRouterPublishRetries',
      runbook: 'router-publish-errors.md',
      summary: 'Router publishes to the broker are failing and being retried',
      prometheus: { expr: 'sum(rate(taskflow_router_publish_retries_total[5m])) > 1', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_router_publish_retries_total', statistic: 'Sum', threshold: 300, periodSeconds: 300, evaluationPeriods: 1 },
    },
    // The self-hosted tier's nodes share nothing: a node the router is not connected to gets no
    // messages, and its browsers see nothing live until they reconnect elsewhere.
    ...(selfHosted ? [brokerNodesMissing('router'), brokerNodesMissing('notifications')] : []),
    {
      id: 'TaskflowRevocationHoldTimeout',
      runbook: 'revocation-hold-timeout.md',
      summary: "A revoked member's disconnect was not confirmed within the hold bound: the router published anyway",
      prometheus: { expr: 'sum(increase(taskflow_router_revocation_hold_timeouts_total[10m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_router_revocation_hold_timeouts_total', statistic: 'Sum', threshold: 0, periodSeconds: 600, evaluationPeriods: 1 },
    },
    // The authorizer: the broker's hooks (lib/authorizer-metrics.ts) locally and on the
    // self-hosted tier's nodes; with IoT Core the custom authorizer Lambda, which CloudWatch
    // measures itself. An error is a decision not made (membership projection unreadable, the
    // function failing): clients cannot connect or subscribe although they may.
    {
      id: 'TaskflowAuthorizerErrors',
      runbook: 'authorizer-errors.md',
      summary: 'The MQTT authorizer fails to decide (errors, not denials) for more than 1% of requests',
      prometheus: { expr: 'sum(rate(taskflow_authorizer_decisions_total{outcome="error"}[5m])) / sum(rate(taskflow_authorizer_decisions_total[5m])) > 0.01', forMinutes: 5 },
      cloudwatch: selfHosted
        ? { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_authorizer_decisions_total', dimensions: { outcome: 'error' }, statistic: 'Sum', threshold: 50, periodSeconds: 300, evaluationPeriods: 1 }
        : { namespace: 'AWS/Lambda', metricName: 'Errors', dimensions: { FunctionName: opts.authorizerFunctionName }, statistic: 'Sum', threshold: 50, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowAuthorizerLatency',
      runbook: 'authorizer-errors.md',
      summary: 'p99 authorizer decision time is over 1 s (IoT Core gives the authorizer 5 s; reconnect waves queue behind it)',
      prometheus: { expr: 'histogram_quantile(0.99, sum by (le) (rate(taskflow_authorizer_seconds_bucket[5m]))) > 1', forMinutes: 10 },
      cloudwatch: selfHosted
        ? { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_authorizer_seconds', statistic: 'p99', threshold: 1, periodSeconds: 60, evaluationPeriods: 10 }
        : { namespace: 'AWS/Lambda', metricName: 'Duration', dimensions: { FunctionName: opts.authorizerFunctionName }, statistic: 'p99', threshold: 1000, periodSeconds: 60, evaluationPeriods: 10 },
    },
    {
      // 600K connections: 1% dropping within a minute is 100/s on every router (each sees all
      // lifecycle events), far above the churn of tabs closing (a few per second).
      id: 'TaskflowDisconnectStorm',
      runbook: 'disconnect-storm.md',
      summary: 'Clients are disconnecting at more than 100/s: a broker, network or authorizer problem, or a revocation wave',
      prometheus: { expr: 'max(rate(taskflow_router_client_disconnects_total[1m])) > 100', forMinutes: 2 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_router_client_disconnects_total', statistic: 'Maximum', threshold: 6000, periodSeconds: 60, evaluationPeriods: 2 },
    },
    {
      id: 'TaskflowAuditBehind',
      runbook: 'audit-behind.md',
      summary: 'The audit trail reads a shard more than 60 s behind its tip',
      prometheus: { expr: 'max(kinesis_consumer_millis_behind_latest{consumer="audit"}) > 60000', forMinutes: 10 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'kinesis_consumer_millis_behind_latest', dimensions: { consumer: 'audit' }, statistic: 'Maximum', threshold: 60_000, periodSeconds: 60, evaluationPeriods: 10 },
    },
    {
      id: 'TaskflowAuditSegmentConflicts',
      runbook: 'audit-chain-broken.md',
      summary: 'Audit segments were found already written by another holder of the shard',
      prometheus: { expr: 'sum(increase(taskflow_audit_segment_conflicts_total[10m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_audit_segment_conflicts_total', statistic: 'Sum', threshold: 0, periodSeconds: 600, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowAuditDeadLetters',
      runbook: 'audit-dead-letters.md',
      summary: 'The audit trail is putting records in the dead-letter store',
      prometheus: { expr: 'sum(rate(taskflow_audit_dlq_total[5m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_audit_dlq_total', statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowSearchIteratorAge',
      runbook: 'search-behind-stream.md',
      summary: 'Search indexes a shard more than 30 s behind its tip',
      prometheus: { expr: 'max(kinesis_consumer_millis_behind_latest{consumer="search"}) > 30000', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'kinesis_consumer_millis_behind_latest', dimensions: { consumer: 'search' }, statistic: 'Maximum', threshold: 30_000, periodSeconds: 60, evaluationPeriods: 5 },
    },
    {
      id: 'TaskflowSearchDeadLetters',
      runbook: 'search-dead-letters.md',
      summary: 'Search is putting records in the dead-letter store',
      prometheus: { expr: 'sum(rate(taskflow_search_dlq_total[5m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_search_dlq_total', statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowSearchQueryErrors',
      runbook: 'search-query-errors.md',
      summary: 'More than 1% of search API requests fail',
      prometheus: { expr: 'sum(rate(taskflow_search_queries_total{outcome="error"}[5m])) / sum(rate(taskflow_search_queries_total[5m])) > 0.01', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_search_queries_total', dimensions: { outcome: 'error' }, statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowNotificationsIteratorAge',
      runbook: 'notifications-behind-stream.md',
      summary: 'Notifications read a shard more than 30 s behind its tip',
      prometheus: { expr: 'max(kinesis_consumer_millis_behind_latest{consumer="notifications"}) > 30000', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'kinesis_consumer_millis_behind_latest', dimensions: { consumer: 'notifications' }, statistic: 'Maximum', threshold: 30_000, periodSeconds: 60, evaluationPeriods: 5 },
    },
    {
      id: 'TaskflowNotificationsDeadLetters',
      runbook: 'notifications-dead-letters.md',
      summary: 'The notifications service is putting records in the dead-letter store',
      prometheus: { expr: 'sum(rate(taskflow_notifications_dlq_total[5m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_notifications_dlq_total', statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowNotificationsBatchErrors',
      runbook: 'notifications-batch-errors.md',
      summary: 'Notification batches keep failing (inbox, watcher or membership table, or the publisher)',
      prometheus: { expr: 'sum(rate(taskflow_notifications_batch_errors_total[5m])) > 0', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_notifications_batch_errors_total', statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowNotificationsApiErrors',
      runbook: 'notifications-api-errors.md',
      summary: 'More than 1% of inbox API requests fail',
      prometheus: { expr: 'sum(rate(taskflow_notifications_api_requests_total{outcome="error"}[5m])) / sum(rate(taskflow_notifications_api_requests_total[5m])) > 0.01', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_notifications_api_requests_total', dimensions: { outcome: 'error' }, statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowSearchQueryLatency',
      runbook: 'search-query-latency.md',
      summary: 'p95 search API latency is over 0.5 s',
      prometheus: { expr: 'histogram_quantile(0.95, sum by (le) (rate(taskflow_search_query_seconds_bucket{outcome="ok"}[5m]))) > 0.5', forMinutes: 10 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_search_query_seconds', statistic: 'p95', threshold: 0.5, periodSeconds: 60, evaluationPeriods: 10 },
    },
    {
      id: 'TaskflowArchiverIteratorAge',
      runbook: 'analytics-behind.md',
      summary: 'The analytics archiver reads a shard more than 60 s behind its tip',
      prometheus: { expr: 'max(kinesis_consumer_millis_behind_latest{consumer="analytics-archiver"}) > 60000', forMinutes: 10 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'kinesis_consumer_millis_behind_latest', dimensions: { consumer: 'analytics-archiver' }, statistic: 'Maximum', threshold: 60_000, periodSeconds: 60, evaluationPeriods: 10 },
    },
    {
      id: 'TaskflowWarehouseLoadBehind',
      runbook: 'analytics-behind.md',
      summary: 'A raw archive object has waited more than 5 min for the loader',
      prometheus: { expr: 'max(taskflow_loader_archive_oldest_pending_seconds) > 300', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_loader_archive_oldest_pending_seconds', statistic: 'Maximum', threshold: 300, periodSeconds: 60, evaluationPeriods: 5 },
    },
    {
      id: 'TaskflowWarehouseStale',
      runbook: 'analytics-behind.md',
      summary: "The warehouse's newest loaded change committed more than 15 min ago",
      // As DQ_FRESHNESS_MAX_SECONDS: at the seed's load no quarter of an hour passes without a change.
      prometheus: { expr: 'min(taskflow_warehouse_freshness_seconds) > 900', forMinutes: 5 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_warehouse_freshness_seconds', statistic: 'Minimum', threshold: 900, periodSeconds: 60, evaluationPeriods: 5 },
    },
    {
      id: 'TaskflowArchiverDeadLetters',
      runbook: 'analytics-dead-letters.md',
      summary: 'The analytics archiver is putting records in the dead-letter store',
      prometheus: { expr: 'sum(rate(taskflow_archiver_dlq_total[5m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_archiver_dlq_total', statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowLoaderQuarantined',
      runbook: 'analytics-dead-letters.md',
      summary: 'The analytics loader is quarantining raw archive lines or objects it cannot load',
      prometheus: { expr: 'sum(rate(taskflow_loader_quarantined_total[5m])) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_loader_quarantined_total', statistic: 'Sum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      id: 'TaskflowDataQualityFailing',
      runbook: 'analytics-data-quality.md',
      summary: 'A warehouse data-quality check found failing rows at its last run',
      prometheus: { expr: 'max(taskflow_dq_failing_rows) > 0', forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_dq_failing_rows', statistic: 'Maximum', threshold: 0, periodSeconds: 300, evaluationPeriods: 1 },
    },
    {
      // 48 h of the 72 h GDPR deadline (gdpr/policy.ts): a day left to finish by hand.
      id: 'TaskflowGdprErasureNearDeadline',
      runbook: 'gdpr-erasure-deadline.md',
      summary: 'An erasure request has been open for 48 h; it must be complete everywhere by 72 h',
      prometheus: { expr: `max(taskflow_gdpr_oldest_open_request_age_seconds) > ${48 * 3600}`, forMinutes: 0 },
      cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: 'taskflow_gdpr_oldest_open_request_age_seconds', statistic: 'Maximum', threshold: 48 * 3600, periodSeconds: 300, evaluationPeriods: 1 },
    },
  ];
}

/**
 * Broker nodes a rollout or a drained host takes away at once: the PodDisruptionBudget's
 * maxUnavailable (infra/aws/workloads.ts). A rollout restarts the tier's pods one after another
 * for about 40 minutes, so an alarm on any missing node would page through every rollout.
 */
export const BROKER_NODES_AWAY_AT_ONCE = 1;

/**
 * Some instance of a service that publishes to the tier (each connects to every node) reaches
 * fewer broker nodes than its list names, beyond what a rollout takes away.
 */
function brokerNodesMissing(service: 'router' | 'notifications'): Alarm {
  const metric = `taskflow_${service}_broker_nodes_missing`;
  const what = service === 'router' ? 'project messages' : 'live notifications';
  return {
    id: service === 'router' ? 'TaskflowBrokerNodesMissing' : 'TaskflowNotificationsBrokerNodesMissing',
    runbook: 'broker-nodes-missing.md',
    summary: `A ${service} instance is not connected to more than ${BROKER_NODES_AWAY_AT_ONCE} broker node of the tier: browsers on the missing nodes get no ${what}`,
    // Per instance (each connects to every node): the max, not the sum.
    prometheus: { expr: `max(${metric}) > ${BROKER_NODES_AWAY_AT_ONCE}`, forMinutes: 5 },
    cloudwatch: { namespace: SERVICE_NAMESPACE, metricName: metric, statistic: 'Maximum', threshold: BROKER_NODES_AWAY_AT_ONCE, periodSeconds: 60, evaluationPeriods: 5 },
  };
}

/** Metric names an expression refers to (histogram series suffixes removed). */
export function metricNames(expr: string): string[] {
  const functions = new Set(['max', 'min', 'sum', 'avg', 'rate', 'irate', 'increase', 'histogram_quantile', 'clamp_min']);
  const names = new Set<string>();
  // Label matchers, ranges and grouping clauses name labels, not metrics.
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/\[[^\]]*\]/g, '').replace(/\b(by|without)\s*\([^)]*\)/g, '');
  for (const m of withoutLabels.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    if (functions.has(m[0])) continue;
    names.add(m[0].replace(/_(bucket|sum|count)$/, ''));
  }
  return [...names];
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** The Prometheus rule file (infra/prometheus/alerts.yml) for the alarms. */
export function prometheusRules(list: readonly Alarm[]): string {
  const lines = ['# Generated from infra/alarms.ts by `taskflow infra prometheus-rules`: edit the catalog, not this file.', 'groups:', '  - name: taskflow', '    rules:'];
  for (const a of list) {
    lines.push(`      - alert: ${a.id}`, `        expr: ${yamlString(a.prometheus.expr)}`);
    if (a.prometheus.forMinutes > 0) lines.push(`        for: ${a.prometheus.forMinutes}m`);
    lines.push('        labels:', '          severity: page', '        annotations:', `          summary: ${yamlString(a.summary)}`, `          runbook: ${yamlString(`runbooks/${a.runbook}`)}`);
  }
  return `${lines.join('\n')}\n`;
}
