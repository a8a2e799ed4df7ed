// The notifications service's Prometheus metrics, declared once. The consumer library adds its
// own (iterator age, leases) to the same registry.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { TierMetrics } from '../lib/broker-tier.js';
import { prometheusTierMetrics } from '../lib/broker-tier-metrics.js';

export const NOTIFICATION_METRICS = {
  eventsIn: 'taskflow_notifications_events_in_total',
  created: 'taskflow_notifications_created_total',
  delivered: 'taskflow_notifications_delivered_total',
  withheld: 'taskflow_notifications_withheld_total',
  deadLettered: 'taskflow_notifications_dlq_total',
  batchSeconds: 'taskflow_notifications_batch_seconds',
  commitToNotified: 'taskflow_notifications_commit_to_notified_seconds',
  batchErrors: 'taskflow_notifications_batch_errors_total',
  requests: 'taskflow_notifications_api_requests_total',
  requestSeconds: 'taskflow_notifications_api_request_seconds',
  nodePublishes: 'taskflow_notifications_node_publishes_total',
  nodePublishErrors: 'taskflow_notifications_node_publish_errors_total',
  nodesConnected: 'taskflow_notifications_broker_nodes_connected',
  nodesMissing: 'taskflow_notifications_broker_nodes_missing',
} as const;

export interface NotifierMetrics {
  eventsIn(n: number): void;
  /** A batch done: its notifications by kind (re-reads counted again), how many went out live, its time, each notification's commit-to-published lag. */
  batch(created: Record<string, number>, delivered: number, withheld: number, seconds: number, lags: readonly number[]): void;
  batchFailed(): void;
  deadLettered(reason: string): void;
}

export const NOTIFICATION_API_OUTCOMES = ['ok', 'bad_request', 'unauthenticated', 'forbidden', 'not_found', 'too_many_requests', 'error'] as const;
export type ApiOutcome = (typeof NOTIFICATION_API_OUTCOMES)[number];

export interface ApiMetrics {
  request(route: string, outcome: ApiOutcome, seconds: number): void;
}

export const noopNotifierMetrics: NotifierMetrics = { eventsIn() {}, batch() {}, batchFailed() {}, deadLettered() {} };
export const noopApiMetrics: ApiMetrics = { request() {} };

export function prometheusNotificationMetrics(registry: Registry): { notifier: NotifierMetrics; api: ApiMetrics; tier: TierMetrics } {
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] });
  const eventsIn = counter(NOTIFICATION_METRICS.eventsIn, 'User records read from the change stream');
  const created = counter(NOTIFICATION_METRICS.created, 'Notifications planned, by kind (a re-read batch counts again; the inbox stores each once)', ['kind']);
  const delivered = counter(NOTIFICATION_METRICS.delivered, "Notifications published on their recipient's topic");
  const withheld = counter(NOTIFICATION_METRICS.withheld, 'Notifications not published: the recipient may not read the project (kept in the inbox, hidden)');
  const dlq = counter(NOTIFICATION_METRICS.deadLettered, 'Records sent to the dead-letter store', ['reason']);
  const failed = counter(NOTIFICATION_METRICS.batchErrors, 'Batches that failed (inbox, watcher store, membership projection or publisher) and are retried');
  const requests = counter(NOTIFICATION_METRICS.requests, 'Inbox API requests by route and outcome', ['route', 'outcome']);
  const batchSeconds = new Histogram({ name: NOTIFICATION_METRICS.batchSeconds, help: 'Time to store and publish one batch', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers: [registry] });
  const lag = new Histogram({ name: NOTIFICATION_METRICS.commitToNotified, help: 'Commit time to published, per notification', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60], registers: [registry] });
  const requestSeconds = new Histogram({ name: NOTIFICATION_METRICS.requestSeconds, help: 'Inbox API request time', labelNames: ['route', 'outcome'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] });
  return {
    // The self-hosted tier (NOTIFICATIONS_BROKERS), as the router's under notifications' names.
    tier: prometheusTierMetrics(registry, NOTIFICATION_METRICS, 'NOTIFICATIONS_BROKERS'),
    notifier: {
      eventsIn: (n) => eventsIn.inc(n),
      batch(byKind, sent, held, seconds, lags) {
        for (const [kind, n] of Object.entries(byKind)) created.inc({ kind }, n);
        delivered.inc(sent);
        withheld.inc(held);
        batchSeconds.observe(seconds);
        for (const l of lags) lag.observe(l);
      },
      batchFailed: () => failed.inc(),
      deadLettered: (reason) => dlq.inc({ reason }),
    },
    api: {
      request(route, outcome, seconds) {
        requests.inc({ route, outcome });
        requestSeconds.observe({ route, outcome }, seconds);
      },
    },
  };
}
