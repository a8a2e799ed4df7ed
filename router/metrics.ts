// The router's Prometheus metrics, declared once. The consumer library adds its own (iterator
// age, leases) to the same registry.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { TierMetrics } from '../lib/broker-tier.js';
import { prometheusTierMetrics } from '../lib/broker-tier-metrics.js';
import type { ApiOutcome } from '../lib/http-api.js';
import type { DeadLetter, ShardRouterMetrics } from './shard-router.js';

export const ROUTER_METRICS = {
  eventsIn: 'taskflow_router_events_in_total',
  duplicatesDropped: 'taskflow_router_duplicates_dropped_total',
  outOfOrderFixed: 'taskflow_router_out_of_order_fixed_total',
  deadLettered: 'taskflow_router_dlq_total',
  changesPublished: 'taskflow_router_changes_published_total',
  messagesPublished: 'taskflow_router_messages_published_total',
  changesUnsubscribed: 'taskflow_router_changes_without_subscriber_total',
  publishLatency: 'taskflow_router_publish_latency_seconds',
  publishRetries: 'taskflow_router_publish_retries_total',
  commitToPublish: 'taskflow_router_commit_to_publish_seconds',
  revocationHold: 'taskflow_router_revocation_hold_seconds',
  revocationHoldTimeouts: 'taskflow_router_revocation_hold_timeouts_total',
  clientDisconnects: 'taskflow_router_client_disconnects_total',
  replayRequests: 'taskflow_replay_requests_total',
  nodePublishes: 'taskflow_router_node_publishes_total',
  nodePublishErrors: 'taskflow_router_node_publish_errors_total',
  nodesConnected: 'taskflow_router_broker_nodes_connected',
  nodesMissing: 'taskflow_router_broker_nodes_missing',
} as const;

export interface PublishMetrics {
  published(messages: number, changes: number, publishSeconds: number, commitToPublishSeconds: readonly number[]): void;
  withoutSubscriber(changes: number): void;
  /** A publish failed and will be tried again. */
  publishRetried(): void;
  /** A revocation hold ended: the disconnect was confirmed, or its bound passed first. */
  revocationHold(seconds: number, outcome: 'confirmed' | 'timed_out'): void;
}

export const noopPublishMetrics: PublishMetrics = { published() {}, withoutSubscriber() {}, publishRetried() {}, revocationHold() {} };

export function prometheusRouterMetrics(registry: Registry): { shard: ShardRouterMetrics; publish: PublishMetrics; clientDisconnected(): void; replayRequest(outcome: ApiOutcome, seconds: number): void; tier: TierMetrics } {
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] });
  const eventsIn = counter(ROUTER_METRICS.eventsIn, 'User records read from the change stream');
  const duplicates = counter(ROUTER_METRICS.duplicatesDropped, 'Events at or below their workspace high-water mark, dropped');
  const reordered = counter(ROUTER_METRICS.outOfOrderFixed, 'Events that arrived out of order within a batch and were put back');
  const dlq = counter(ROUTER_METRICS.deadLettered, 'Records sent to the dead-letter store', ['reason']);
  const changes = counter(ROUTER_METRICS.changesPublished, 'Changes delivered in MQTT messages');
  const messages = counter(ROUTER_METRICS.messagesPublished, 'MQTT messages published');
  const unsubscribed = counter(ROUTER_METRICS.changesUnsubscribed, 'Changes not published because their project had no live subscriber');
  const retries = counter(ROUTER_METRICS.publishRetries, 'Publishes that failed and were retried in place');
  const publishLatency = new Histogram({ name: ROUTER_METRICS.publishLatency, help: 'Time to publish one message', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] });
  const holdSeconds = new Histogram({ name: ROUTER_METRICS.revocationHold, help: "How long a workspace's publishes were held for a revoked member's disconnect", labelNames: ['outcome'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] });
  const holdTimeouts = counter(ROUTER_METRICS.revocationHoldTimeouts, 'Revocation holds released by their bound without a confirmed disconnect (runbooks/revocation-hold-timeout.md)');
  const commitToPublish = new Histogram({ name: ROUTER_METRICS.commitToPublish, help: 'Commit time to publish, per change', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10], registers: [registry] });
  // From the lifecycle events every instance receives (all of them, not a share): a storm shows
  // as the same rate on each router, so the alarm takes the max, not the sum.
  const disconnects = counter(ROUTER_METRICS.clientDisconnects, 'Client disconnects seen in the broker lifecycle events (IoT Core presence events in production)');
  // By outcome: a flooding user's refusals show as too_many_requests.
  const replayRequests = counter(ROUTER_METRICS.replayRequests, 'Replay API requests answered, by outcome (too_many_requests: a user over its rate or concurrency)', ['outcome']);
  return {
    tier: prometheusTierMetrics(registry, ROUTER_METRICS, 'ROUTER_BROKERS'),
    clientDisconnected: () => disconnects.inc(),
    replayRequest: (outcome) => replayRequests.inc({ outcome }),
    shard: {
      eventsIn: (n) => eventsIn.inc(n),
      duplicatesDropped: (n) => duplicates.inc(n),
      outOfOrderFixed: (n) => reordered.inc(n),
      deadLettered: (reason: DeadLetter['reason']) => dlq.inc({ reason }),
    },
    publish: {
      published(m, c, seconds, commitLatencies) {
        messages.inc(m);
        changes.inc(c);
        publishLatency.observe(seconds);
        for (const l of commitLatencies) commitToPublish.observe(l);
      },
      withoutSubscriber: (n) => unsubscribed.inc(n),
      publishRetried: () => retries.inc(),
      revocationHold(seconds, outcome) {
        holdSeconds.observe({ outcome }, seconds);
        if (outcome === 'timed_out') holdTimeouts.inc();
      },
    },
  };
}
