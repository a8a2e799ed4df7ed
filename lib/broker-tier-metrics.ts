// The broker tier's Prometheus metrics, for each service that publishes to it (the router,
// notifications) under that service's own names: both connect to every node, and the
// nodes-missing alarms read each one's gauge.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TierMetrics } from './broker-tier.js';

export interface TierMetricNames {
  nodePublishes: string;
  nodePublishErrors: string;
  nodesConnected: string;
  nodesMissing: string;
}

export function prometheusTierMetrics(registry: Registry, names: TierMetricNames, nodesSetting: string): TierMetrics {
  // Per node, by outcome (node_down: it went away mid-publish).
  const publishes = new Counter({ name: names.nodePublishes, help: 'Messages published to a broker node of the tier', labelNames: ['node', 'outcome'], registers: [registry] });
  const errors = new Counter({ name: names.nodePublishErrors, help: 'Publishes to a broker node of the tier that failed (retried)', labelNames: ['node'], registers: [registry] });
  const connected = new Gauge({ name: names.nodesConnected, help: 'Broker nodes of the tier the service is connected to', registers: [registry] });
  // What the nodes-missing alarm reads: the service knows how many nodes its list names, the alarm does not.
  const missing = new Gauge({ name: names.nodesMissing, help: `Broker nodes of the tier (${nodesSetting}) the service is not connected to`, registers: [registry] });
  return {
    nodePublished: (node, outcome) => publishes.inc({ node, outcome }),
    nodePublishFailed: (node) => errors.inc({ node }),
    nodesConnected(n, configured) {
      connected.set(n);
      missing.set(configured - n);
    },
  };
}
