// How the services' metrics reach CloudWatch, where the alarms (infra/alarms.ts) read them: the
// CloudWatch agent scrapes every pipeline pod's /metrics (its port named `metrics`) as Prometheus
// does locally, and its embedded-metric-format processor turns the series the CloudWatch alarms
// read — only those, each with the dimensions its alarm names — into metrics of namespace TaskFlow.
// Shipping every series would cost $0.30 per metric and label set each month for nothing; a
// series the alarms do not read stays in the agent's log group only.
import { METRIC_NAMES } from '@taskflow/stream';
import { type Alarm, SERVICE_NAMESPACE } from '../alarms.js';
import { ARCHIVER_SETTINGS } from '../../analytics/config.js';
import { AUDIT_SETTINGS } from '../../audit/config.js';
import { AUTHORIZER_METRICS, AUTHORIZER_OUTCOMES } from '../../lib/authorizer-metrics.js';
import { API_OUTCOMES } from '../../lib/http-api.js';
import { NOTIFICATION_SETTINGS } from '../../notifications/config.js';
import { NOTIFICATION_API_OUTCOMES, NOTIFICATION_METRICS } from '../../notifications/metrics.js';
import { ROUTER_SETTINGS } from '../../router/config.js';
import { SEARCH_SETTINGS } from '../../search/config.js';
import { SEARCH_METRICS } from '../../search/metrics.js';

export const CLOUDWATCH_AGENT_SERVICE_ACCOUNT = 'taskflow-cloudwatch-agent';
/** Pinned like the packages; mirror it into the account's ECR before the first deploy. */
export const CLOUDWATCH_AGENT_IMAGE = 'public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300026.2b361';
/** The scrape job's name: the EMF processor selects its series by it. */
export const SCRAPE_JOB = 'taskflow';
const SCRAPE_INTERVAL = '30s';

export function metricsLogGroupName(env: string): string {
  return `/taskflow/${env}/metrics`;
}

export interface ShippedMetric {
  name: string;
  /** The Prometheus labels that become its CloudWatch dimensions (none: one series for all pods). */
  dimensions: string[];
}

/** Each service metric a CloudWatch alarm reads, once per dimension set, sorted. */
export function shippedMetrics(catalog: readonly Alarm[]): ShippedMetric[] {
  const seen = new Map<string, ShippedMetric>();
  for (const a of catalog) {
    if (a.cloudwatch.namespace !== SERVICE_NAMESPACE) continue;
    const dimensions = Object.keys(a.cloudwatch.dimensions ?? {}).sort();
    seen.set(`${a.cloudwatch.metricName} ${dimensions.join(',')}`, { name: a.cloudwatch.metricName, dimensions });
  }
  return [...seen.values()].sort((x, y) => x.name.localeCompare(y.name) || x.dimensions.join().localeCompare(y.dimensions.join()));
}

/**
 * The values each dimension of a shipped metric takes in the services' series: the stream readers'
 * consumer names (their defaults), the outcomes of the APIs' request counters and of the broker
 * nodes' authorizer decisions.
 */
export const SHIPPED_DIMENSION_VALUES: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  [METRIC_NAMES.iteratorAge]: {
    consumer: [ROUTER_SETTINGS, SEARCH_SETTINGS, NOTIFICATION_SETTINGS, AUDIT_SETTINGS, ARCHIVER_SETTINGS].map((s) => s.consumerName.default as string),
  },
  [SEARCH_METRICS.queries]: { outcome: API_OUTCOMES },
  [NOTIFICATION_METRICS.requests]: { outcome: NOTIFICATION_API_OUTCOMES },
  [AUTHORIZER_METRICS.decisions]: { outcome: AUTHORIZER_OUTCOMES },
};

/**
 * CloudWatch custom metrics the agent creates (each billed per month): one per shipped metric and
 * combination of its dimensions' values, one for a metric without dimensions.
 */
export function customMetricCount(shipped: readonly ShippedMetric[], values = SHIPPED_DIMENSION_VALUES): number {
  let count = 0;
  for (const m of shipped) {
    let combinations = 1;
    for (const d of m.dimensions) {
      const known = values[m.name]?.[d];
      if (!known) throw new Error(`the values of dimension ${d} of ${m.name} are not known (SHIPPED_DIMENSION_VALUES)`);
      combinations *= known.length;
    }
    count += combinations;
  }
  return count;
}

/** The agent's metric declarations: one per dimension set, selecting its metrics by exact name. */
export function metricDeclarations(shipped: readonly ShippedMetric[]) {
  const byDimensions = new Map<string, ShippedMetric[]>();
  for (const m of shipped) byDimensions.set(m.dimensions.join(','), [...(byDimensions.get(m.dimensions.join(',')) ?? []), m]);
  return [...byDimensions.values()].map((metrics) => ({
    source_labels: ['job'],
    label_matcher: `^${SCRAPE_JOB}$`,
    dimensions: [metrics[0]!.dimensions],
    metric_selectors: metrics.map((m) => `^${m.name}$`),
  }));
}

/** Prometheus scrape configuration (JSON, which YAML reads): the namespace's pipeline pods, their `metrics` port. */
export function scrapeConfig(namespace: string) {
  return {
    global: { scrape_interval: SCRAPE_INTERVAL, scrape_timeout: '10s' },
    scrape_configs: [
      {
        job_name: SCRAPE_JOB,
        kubernetes_sd_configs: [{ role: 'pod', namespaces: { names: [namespace] } }],
        relabel_configs: [
          { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_part_of'], regex: 'taskflow', action: 'keep' },
          { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'metrics', action: 'keep' },
          { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'], target_label: 'service' },
          { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
        ],
      },
    ],
  };
}

type Manifest = Record<string, unknown>;

/** The agent's ServiceAccount (IRSA), its pod discovery rights in the namespace, its two configurations and its Deployment. */
export function cloudWatchAgentManifests(opts: { env: string; namespace: string; region: string; roleArn: string; catalog: readonly Alarm[] }): Manifest[] {
  const name = 'taskflow-cloudwatch-agent';
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'taskflow-observability' };
  const metadata = { name, namespace: opts.namespace, labels };
  const agentConfig = {
    agent: { region: opts.region },
    logs: {
      metrics_collected: {
        prometheus: {
          log_group_name: metricsLogGroupName(opts.env),
          prometheus_config_path: '/etc/prometheusconfig/prometheus.yaml',
          emf_processor: { metric_namespace: SERVICE_NAMESPACE, metric_declaration: metricDeclarations(shippedMetrics(opts.catalog)) },
        },
      },
      force_flush_interval: 5,
    },
  };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { ...metadata, name: CLOUDWATCH_AGENT_SERVICE_ACCOUNT, annotations: { 'eks.amazonaws.com/role-arn': opts.roleArn } } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata, rules: [{ apiGroups: [''], resources: ['pods', 'endpoints', 'services'], verbs: ['get', 'list', 'watch'] }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ kind: 'ServiceAccount', name: CLOUDWATCH_AGENT_SERVICE_ACCOUNT, namespace: opts.namespace }] },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { ...metadata, name: `${name}-prometheus` }, data: { 'prometheus.yaml': JSON.stringify(scrapeConfig(opts.namespace), null, 2) } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { ...metadata, name: `${name}-config` }, data: { 'cwagentconfig.json': JSON.stringify(agentConfig, null, 2) } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata,
      spec: {
        // One scraper: two would ship every data point twice.
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: CLOUDWATCH_AGENT_SERVICE_ACCOUNT,
            containers: [
              {
                name: 'cloudwatch-agent',
                image: CLOUDWATCH_AGENT_IMAGE,
                resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '512Mi' } },
                volumeMounts: [
                  { name: 'prometheus-config', mountPath: '/etc/prometheusconfig' },
                  { name: 'agent-config', mountPath: '/etc/cwagentconfig' },
                ],
              },
            ],
            volumes: [
              { name: 'prometheus-config', configMap: { name: `${name}-prometheus` } },
              { name: 'agent-config', configMap: { name: `${name}-config` } },
            ],
          },
        },
      },
    },
  ];
}
