// The EKS workloads as plain Kubernetes manifests (no cdk8s): one entry per service identity.
// Capture is an active/standby pair on one slot (never scaled by load); the router is a
// StatefulSet so each instance keeps a stable lease-owner name across restarts (KINESIS_WORKER_ID
// and CAPTURE_INSTANCE_ID are the pod names: router-0, router-1, ...); readers that
// only need a unique worker id are Deployments; a service that keeps a file (the loader's DuckDB
// warehouse) is one StatefulSet pod with its own volume. `taskflow infra synth` writes them beside the CloudFormation templates; the IRSA roles
// they name are in the services stack. The names are the services `taskflow dev` runs (minus
// the development-only board), and with the self-hosted broker tier the broker, which `taskflow
// dev` runs inside its stack: infra/aws/iam.test.ts fails when one has no workload and role.
// The broker tier is a StatefulSet of a fixed size (the cost model's node count): the router's
// ROUTER_BROKERS and notifications' NOTIFICATIONS_BROKERS name every pod (brokerNodeUrls), so they come from one workload.
import { ARCHIVER_SETTINGS } from '../../analytics/config.js';
import { AUDIT_SETTINGS } from '../../audit/config.js';
import { BROKER_SETTINGS } from '../../broker/config.js';
import type { Setting } from '../../lib/config.js';
import { NOTIFICATION_SETTINGS } from '../../notifications/config.js';
import { ROUTER_SETTINGS } from '../../router/config.js';
import { SEARCH_SETTINGS } from '../../search/config.js';
import type { Settings } from './settings.js';
import { RAW_DELIVERY_STREAM, RAW_PREFIX } from './stacks/analytics.js';
import { AUDIT_RETENTION_DAYS } from './stacks/compliance.js';
import { DEPLOYMENT_SECRETS } from './secrets.js';

export interface Workload {
  name: string;
  kind: 'Deployment' | 'StatefulSet';
  /** taskflow subcommand the container runs. */
  args: string[];
  replicas: { min: number; max: number };
  /** CPU request (millicores) per pod; HPA targets 60% of it. */
  cpuMillis: number;
  memoryMi: number;
  env: Record<string, string>;
  /** Additional container ports besides metrics. */
  ports?: Record<string, number>;
  /**
   * Settings whose values exist only once the stacks are deployed (the stream stack's outputs),
   * read from a ConfigMap the deployment writes: setting → key of STREAM_CONSUMERS_CONFIG_MAP.
   */
  fromStreamConsumers?: Record<string, string>;
  /** The setting that takes the pod's stable name (capture-0, router-1, ...) as the instance id. */
  instanceIdEnv?: string;
  /** A Kubernetes Secret mounted read-only as files (synced from Secrets Manager: secrets.ts). */
  secretFiles?: { secret: string; mountPath: string };
  /** Settings read from a key of a Kubernetes Secret (synced from Secrets Manager: secrets.ts). */
  secretEnv?: Record<string, { secret: string; key: string }>;
  /** A persistent volume of this size mounted at /data (StatefulSets only). */
  volumeGi?: number;
  /** A stream reader's lease name (its consumer-name setting, set in the manifest): its role may touch only these leases. */
  leases?: { setting: string; name: string };
  /** How long a stopping pod may take (default 60 s): at least what the service's own drain takes. */
  terminationGracePeriodSeconds?: number;
  /** An internet-facing NLB Service (`<name>-public`) terminating TLS on `port` with this ACM certificate, to the container port `targetPort`. */
  internetFacing?: { port: number; targetPort: string; certificateArn: string };
}

/** A setting from one key of a deployment secret (secrets.ts), refused at synth if the secret has no such key. */
function fromSecret(name: string, key: string): { secret: string; key: string } {
  const s = DEPLOYMENT_SECRETS.find((d) => d.name === name);
  if (!s?.keys.includes(key)) throw new Error(`no deployment secret ${name} with key ${key} (infra/aws/secrets.ts)`);
  return { secret: s.kubernetesSecret, key };
}

/** The lease name a reader uses by default, from its own setting; the manifest sets it so the IAM condition and the process agree. */
function leasesOf(setting: Setting<string>): NonNullable<Workload['leases']> {
  if (!setting.default) throw new Error(`${setting.name} has no default`);
  return { setting: setting.name, name: setting.default };
}

/**
 * The ConfigMap holding each EFO consumer's ARN under its name (router, notifications, …): the
 * deployment fills it from the stream stack's `EfoConsumerArn<name>` outputs (the ARN carries the
 * consumer's creation time, unknown when the manifests are written).
 */
export const STREAM_CONSUMERS_CONFIG_MAP = 'taskflow-stream-consumers';

/** The EFO consumers the workloads read as (their fromStreamConsumers), each once, in workload order. */
export function fanOutConsumers(ws: readonly Workload[]): string[] {
  return [...new Set(ws.flatMap((w) => Object.values(w.fromStreamConsumers ?? {})))];
}

/**
 * The stream-consumers ConfigMap from the stream stack's outputs, as `cdk deploy --outputs-file`
 * writes them (`{ "<stack>": { "EfoConsumerArn<name>": "arn:…" } }`): each consumer's ARN under
 * its name. Every consumer in `consumers` (fanOutConsumers) must be there; its pods would not start without it.
 */
export function streamConsumersConfigMap(outputs: Record<string, Record<string, string>>, namespace: string, consumers: readonly string[]): Manifest {
  const prefix = 'EfoConsumerArn';
  const data: Record<string, string> = {};
  for (const stackOutputs of Object.values(outputs)) {
    for (const [key, value] of Object.entries(stackOutputs)) if (key.startsWith(prefix)) data[key.slice(prefix.length)] = value;
  }
  const missing = consumers.filter((name) => !data[name]?.startsWith('arn:'));
  if (missing.length > 0) throw new Error(`no ${prefix}<name> output with an ARN for ${missing.join(', ')}: deploy the stream stack with --outputs-file and pass that file`);
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: STREAM_CONSUMERS_CONFIG_MAP, namespace }, data };
}

export const METRICS_PORT = 9400;
/** The broker's MQTT-over-WebSocket and HTTP routes port (BROKER_WS_PORT): the NLB's target and the router's ws:// URLs. */
export const BROKER_WS_PORT = 8080;
/** Browsers connect to wss://<the NLB's name>:443/mqtt. */
export const BROKER_PUBLIC_PORT = 443;
/** Beyond BROKER_DRAIN_MS, what a stopping broker needs to close its listeners and exit. */
const BROKER_STOP_MARGIN_S = 20;
export const REPLAY_PORT = 8080;
/** Port of a reader's browser-facing API (search, notifications inbox, analytics). */
export const API_PORT = 8080;
/** Where the router's pods find their IoT certificate and key (ROUTER_MQTT_IDENTITY_SECRET). */
const ROUTER_MQTT_IDENTITY_DIR = '/etc/taskflow/router-mqtt';
/** The analytics loader's internal erasure endpoint (LOADER_ERASURE_PORT), which only gdpr calls. */
export const ERASURE_PORT = 8081;
/** Where gdpr's service token for that endpoint is mounted (WAREHOUSE_ERASURE_TOKEN_FILE, re-read at every call). */
const GDPR_SECRETS_DIR = '/var/run/secrets/taskflow';
/** The environment's KMS key, which wraps the per-subject data keys: readers that decrypt personal fields need it named. */
const SUBJECT_KEYS = { SUBJECT_KEYS_KMS_KEY_ID: 'alias/taskflow' };

/**
 * The router's ROUTER_BROKERS: one ws:// URL per pod of the broker StatefulSet, by the stable
 * name its headless Service gives each pod (`<pod>.<service>.<namespace>.svc`), as many as the
 * StatefulSet's replicas: the list and the tier cannot disagree.
 */
export function brokerNodeUrls(broker: Workload, namespace: string): string[] {
  const port = broker.ports?.ws;
  if (broker.kind !== 'StatefulSet' || port === undefined) throw new Error(`${broker.name}: the broker tier is a StatefulSet with a ws port (stable pod names)`);
  // A pod the list does not name would get browsers and never a message; one it names but that does not exist is only retried.
  if (broker.replicas.min !== broker.replicas.max) throw new Error(`${broker.name}: the broker tier has a fixed size (the router publishes to the nodes its list names)`);
  return Array.from({ length: broker.replicas.max }, (_, i) => `ws://${broker.name}-${i}.${broker.name}.${namespace}.svc:${port}`);
}

/** MQTT connections per broker node for each router pod: the peak's publishes to one node over the fewest router pods, at the per-connection rate (ROUTER_PUBLISHES_PER_SECOND's default). */
function routerConnectionsPerNode(peakPublishesPerNodePerS: number, routerPods: number): number {
  const perConnection = ROUTER_SETTINGS.publishesPerSecond.read({});
  return Math.max(1, Math.ceil(peakPublishesPerNodePerS / routerPods / perConnection));
}

export function workloads(settings: Pick<Settings, 'streamName' | 'jwt' | 'rawArchiveBucket' | 'efoConsumers' | 'auditBucket' | 'auditIdentityBucket' | 'iotDataEndpoint' | 'namespace' | 'broker' | 'brokerTier' | 'brokerCertificateArn'>): Workload[] {
  const streamName = settings.streamName;
  // The router, notifications and the archiver read by enhanced fan-out, each as its own EFO
  // consumer: with them polling too, five polling readers would share each shard's 2 MB/s at
  // the peak's 0.8 MB/s per shard (infra/aws/cost/model.ts kinesisShards); search and audit poll.
  /** A stream-consumer-kit reader (packages/stream) reading as its registered EFO consumer. */
  const byFanOut = (w: Workload, consumer: string): Workload => ({ ...w, env: { ...w.env, KINESIS_READER: 'fanout' }, fromStreamConsumers: { KINESIS_FANOUT_CONSUMER_ARN: consumer } });
  // Services that verify browsers' tokens: outside development mode a missing key set is a start-up error.
  const jwt = { JWT_JWKS_URL: settings.jwt.jwksUrl, JWT_ISSUER: settings.jwt.issuer, JWT_AUDIENCE: settings.jwt.audience };
  // The audit trail's S3 store (audit/s3-store.ts): audit writes it, the gdpr processor's audit
  // sink (audit/erasure-sink.ts) deletes identity mappings from it; AUDIT_KEY, which both need,
  // comes from the audit-key secret (secrets.ts).
  const auditTrail = { [AUDIT_SETTINGS.store.name]: 's3', [AUDIT_SETTINGS.bucket.name]: settings.auditBucket, [AUDIT_SETTINGS.identityBucket.name]: settings.auditIdentityBucket };
  // The self-hosted broker tier (broker/README.md): unclustered aedes nodes, one per pod, sized by
  // the cost model (infra/aws/cost/model.ts brokerTier). A fixed size, no HPA: the router's node
  // list is written with the manifests, and a node removed by a scale-down would drop its
  // connections at once; resizing is a change of the scale and a rollout (infra/aws/README.md).
  // SIGTERM drains the node over BROKER_DRAIN_MS (readiness fails first, so the NLB stops sending
  // it clients); the grace period lets that finish.
  const drainMs = BROKER_SETTINGS.drainMs.read({});
  const broker: Workload = {
    name: 'broker',
    kind: 'StatefulSet',
    args: ['broker'],
    replicas: { min: settings.brokerTier.nodes, max: settings.brokerTier.nodes },
    cpuMillis: settings.brokerTier.cpuMillis,
    memoryMi: settings.brokerTier.memoryMi,
    env: { [BROKER_SETTINGS.wsPort.name]: String(BROKER_WS_PORT), [BROKER_SETTINGS.drainMs.name]: String(drainMs), ...jwt },
    ports: { ws: BROKER_WS_PORT },
    instanceIdEnv: BROKER_SETTINGS.brokerId.name,
    terminationGracePeriodSeconds: Math.ceil(drainMs / 1000) + BROKER_STOP_MARGIN_S,
    internetFacing: { port: BROKER_PUBLIC_PORT, targetPort: 'ws', certificateArn: settings.brokerCertificateArn },
  };
  const routerReplicas = { min: 3, max: 24 };
  // The router's broker: every node of the tier (its service token from a deployment secret: the
  // MQTT password and the Bearer of the nodes' GET /subscriptions), or IoT Core over MQTT with
  // mTLS (infra/aws/README.md: measured against HTTPS; the CA is Amazon's root, in Node's own store).
  const routerBroker: Pick<Workload, 'env' | 'secretEnv' | 'secretFiles'> =
    settings.broker === 'self-hosted'
      ? {
          env: {
            [ROUTER_SETTINGS.brokers.name]: brokerNodeUrls(broker, settings.namespace).join(','),
            [ROUTER_SETTINGS.mqttConnections.name]: String(routerConnectionsPerNode(settings.brokerTier.peakPublishesPerNodePerS, routerReplicas.min)),
          },
          secretEnv: { [ROUTER_SETTINGS.mqttPassword.name]: fromSecret('router-service-token', 'token') },
        }
      : {
          env: {
            MQTT_URL: `mqtts://${settings.iotDataEndpoint}:8883`,
            ROUTER_MQTT_CERT_FILE: `${ROUTER_MQTT_IDENTITY_DIR}/cert.pem`,
            ROUTER_MQTT_KEY_FILE: `${ROUTER_MQTT_IDENTITY_DIR}/key.pem`,
          },
          secretFiles: { secret: fromSecret('router-mqtt', 'cert.pem').secret, mountPath: ROUTER_MQTT_IDENTITY_DIR },
        };
  // Notifications' live delivery: with the tier, to every node where the user's topic has a
  // subscriber (NOTIFICATIONS_BROKERS, the router's list), with its own service token; with IoT
  // Core, through the data plane's Publish (its role's iot:Publish).
  const notificationsBroker: Pick<Workload, 'env' | 'secretEnv'> =
    settings.broker === 'self-hosted'
      ? {
          env: { [NOTIFICATION_SETTINGS.publisher.name]: 'mqtt', [NOTIFICATION_SETTINGS.brokers.name]: brokerNodeUrls(broker, settings.namespace).join(',') },
          secretEnv: { [NOTIFICATION_SETTINGS.mqttPassword.name]: fromSecret('notifications-service-token', 'token') },
        }
      : { env: { [NOTIFICATION_SETTINGS.publisher.name]: 'iot-data' } };
  const list: Workload[] = [
    ...(settings.broker === 'self-hosted' ? [broker] : []),
    {
      name: 'capture',
      kind: 'StatefulSet',
      args: ['capture'],
      replicas: { min: 2, max: 2 },
      cpuMillis: 2000,
      memoryMi: 2048,
      env: { CHANGE_STREAM_NAME: streamName, CAPTURE_COMPRESSION: 'zstd', CAPTURE_AGGREGATE: 'true', SUBJECT_KEYS_KMS_KEY_ID: 'alias/taskflow' },
      secretEnv: { DATABASE_URL: fromSecret('capture-database', 'DATABASE_URL') },
      instanceIdEnv: 'CAPTURE_INSTANCE_ID',
    },
    {
      name: 'router',
      leases: leasesOf(ROUTER_SETTINGS.consumerName),
      kind: 'StatefulSet',
      args: ['router'],
      replicas: routerReplicas,
      cpuMillis: 2000,
      memoryMi: 2048,
      env: {
        CHANGE_STREAM_NAME: streamName,
        ROUTER_READER: 'fanout',
        ROUTER_PAYLOAD_MODE: 'thin',
        // Thin messages gzipped (the SDK inflates them): a sixth of the bytes the broker tier sends to the internet (infra/aws/cost: payload thin-gzip).
        ROUTER_GZIP: 'true',
        ROUTER_SUBSCRIPTION_EVENTS: 'iot',
        ROUTER_PUBLISHER: 'mqtt',
        ...routerBroker.env,
        REPLAY_PORT: String(REPLAY_PORT),
        ...SUBJECT_KEYS,
        ...jwt,
      },
      ...(routerBroker.secretEnv ? { secretEnv: routerBroker.secretEnv } : {}),
      ...(routerBroker.secretFiles ? { secretFiles: routerBroker.secretFiles } : {}),
      fromStreamConsumers: { ROUTER_FANOUT_CONSUMER_ARN: 'router' },
      ports: { replay: REPLAY_PORT },
      instanceIdEnv: 'KINESIS_WORKER_ID',
    },
    {
      name: 'search',
      leases: leasesOf(SEARCH_SETTINGS.consumerName),
      kind: 'Deployment',
      args: ['search'],
      replicas: { min: 2, max: 8 },
      cpuMillis: 1000,
      memoryMi: 1024,
      // OPENSEARCH_URL: the cluster is outside this app; its URL (with credentials) is a secret.
      env: { CHANGE_STREAM_NAME: streamName, SEARCH_ENGINE: 'opensearch', SEARCH_PORT: String(API_PORT), ...SUBJECT_KEYS, ...jwt },
      secretEnv: { OPENSEARCH_URL: fromSecret('opensearch', 'OPENSEARCH_URL') },
      ports: { api: API_PORT },
    },
    byFanOut(
      {
        name: 'notifications',
        leases: leasesOf(NOTIFICATION_SETTINGS.consumerName),
        kind: 'Deployment',
        args: ['notifications'],
        replicas: { min: 2, max: 8 },
        cpuMillis: 1000,
        memoryMi: 1024,
        env: { CHANGE_STREAM_NAME: streamName, ...notificationsBroker.env, NOTIFICATIONS_PORT: String(API_PORT), ...SUBJECT_KEYS, ...jwt },
        ...(notificationsBroker.secretEnv ? { secretEnv: notificationsBroker.secretEnv } : {}),
        ports: { api: API_PORT },
      },
      'notifications',
    ),
    {
      // A Deployment: with the S3 store the trail keeps no local state. Segments and redrive marks
      // are in the Object Lock bucket, each shard's head in its lease checkpoint, and a new
      // holder folds what it finds in the bucket, so a pod needs neither a volume nor a stable
      // name; two holders of a shard (a rollout's overlap) cannot fork the chain, the conditional
      // create refuses the second (audit/store.ts).
      name: 'audit',
      leases: leasesOf(AUDIT_SETTINGS.consumerName),
      kind: 'Deployment',
      args: ['audit'],
      replicas: { min: 1, max: 1 },
      cpuMillis: 500,
      memoryMi: 1024,
      // Each object's own lock is as long as the bucket's default retention.
      env: { CHANGE_STREAM_NAME: streamName, ...auditTrail, [AUDIT_SETTINGS.retentionDays.name]: String(AUDIT_RETENTION_DAYS) },
      secretEnv: { [AUDIT_SETTINGS.key.name]: fromSecret('audit-key', 'AUDIT_KEY') },
    },
    {
      // Polls its request store and purges every sink of gdpr/POLICY.md; DATABASE_URL and
      // AUDIT_KEY come from secrets (secrets.ts), as capture's and audit's. The warehouse is purged
      // inside the loader, through its erasure endpoint (the loader's Service, port `erasure`),
      // with gdpr's service JWT (subject service:gdpr, issued by the identity provider) from the
      // mounted Secret. The DynamoDB sinks use the tables' default names (taskflow-changelog, …).
      name: 'gdpr',
      kind: 'Deployment',
      args: ['gdpr'],
      replicas: { min: 1, max: 1 },
      cpuMillis: 250,
      memoryMi: 512,
      // The search-index sink purges the search service's OpenSearch alias (OPENSEARCH_URL as search's).
      env: { ...SUBJECT_KEYS, ...auditTrail, SEARCH_ENGINE: 'opensearch', WAREHOUSE_ERASURE_URL: `http://analytics-loader:${ERASURE_PORT}`, WAREHOUSE_ERASURE_TOKEN_FILE: `${GDPR_SECRETS_DIR}/warehouse-erasure-token` },
      secretFiles: { secret: fromSecret('gdpr', 'warehouse-erasure-token').secret, mountPath: GDPR_SECRETS_DIR },
      secretEnv: { DATABASE_URL: fromSecret('gdpr', 'DATABASE_URL'), [AUDIT_SETTINGS.key.name]: fromSecret('audit-key', 'AUDIT_KEY'), OPENSEARCH_URL: fromSecret('opensearch', 'OPENSEARCH_URL') },
    },
    byFanOut(
      {
        name: 'analytics-archiver',
        leases: leasesOf(ARCHIVER_SETTINGS.consumerName),
        kind: 'Deployment',
        args: ['analytics', 'archive'],
        replicas: { min: 2, max: 8 },
        cpuMillis: 1000,
        memoryMi: 1024,
        env: { CHANGE_STREAM_NAME: streamName, FIREHOSE_DELIVERY_STREAM: RAW_DELIVERY_STREAM },
      },
      'archiver',
    ),
    {
      // DuckDB has one writing process per warehouse file: one pod, which also serves the analytics API.
      name: 'analytics-loader',
      kind: 'StatefulSet',
      args: ['analytics', 'load'],
      replicas: { min: 1, max: 1 },
      cpuMillis: 2000,
      memoryMi: 4096,
      env: { ARCHIVE_BUCKET: settings.rawArchiveBucket, ARCHIVE_PREFIX: RAW_PREFIX, WAREHOUSE_PATH: '/data/warehouse.duckdb', ANALYTICS_API_PORT: String(API_PORT), LOADER_ERASURE_PORT: String(ERASURE_PORT), ...jwt },
      ports: { api: API_PORT, erasure: ERASURE_PORT },
      volumeGi: 200,
    },
  ];
  for (const name of fanOutConsumers(list)) {
    if (!settings.efoConsumers.includes(name)) throw new Error(`the ${name} reads by enhanced fan-out: the stream stack must register an EFO consumer named ${name} (efo_consumers)`);
  }
  return list;
}

type Manifest = Record<string, unknown>;

export function serviceAccountName(w: Pick<Workload, 'name'>): string {
  return `taskflow-${w.name}`;
}

/**
 * The internet-facing NLB of a workload (the AWS Load Balancer Controller's annotations): TLS
 * terminated with the ACM certificate, TCP to the pods' IPs, cross-zone on, targets in service
 * while the pod's /readyz answers (a draining broker leaves at once), and a deregistration delay
 * as long as the pod's grace period, so the pod closes its connections itself.
 */
function internetFacingService(w: Workload, metadata: { name: string; namespace: string; labels: Record<string, string> }, graceSeconds: number): Manifest | undefined {
  const nlb = w.internetFacing;
  if (!nlb) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      ...metadata,
      name: `${w.name}-public`,
      annotations: {
        'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internet-facing',
        'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
        'service.beta.kubernetes.io/aws-load-balancer-ssl-cert': nlb.certificateArn,
        'service.beta.kubernetes.io/aws-load-balancer-ssl-ports': String(nlb.port),
        'service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy': 'ELBSecurityPolicy-TLS13-1-2-2021-06',
        'service.beta.kubernetes.io/aws-load-balancer-backend-protocol': 'tcp',
        'service.beta.kubernetes.io/aws-load-balancer-attributes': 'load_balancing.cross_zone.enabled=true',
        'service.beta.kubernetes.io/aws-load-balancer-target-group-attributes': `deregistration_delay.timeout_seconds=${graceSeconds}`,
        'service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol': 'http',
        'service.beta.kubernetes.io/aws-load-balancer-healthcheck-port': String(METRICS_PORT),
        'service.beta.kubernetes.io/aws-load-balancer-healthcheck-path': '/readyz',
        'service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval': '10',
        'service.beta.kubernetes.io/aws-load-balancer-healthcheck-healthy-threshold': '2',
        'service.beta.kubernetes.io/aws-load-balancer-healthcheck-unhealthy-threshold': '2',
      },
    },
    spec: { type: 'LoadBalancer', loadBalancerClass: 'service.k8s.aws/nlb', selector: metadata.labels, ports: [{ name: 'wss', protocol: 'TCP', port: nlb.port, targetPort: nlb.targetPort }] },
  };
}

/** ServiceAccount (IRSA annotation), the workload, its HPA (when it may scale) and PDB; an internet-facing NLB Service when it has one. */
export function manifests(w: Workload, opts: { namespace: string; image: string; roleArn: string; region: string }): Manifest[] {
  const labels = { 'app.kubernetes.io/name': w.name, 'app.kubernetes.io/part-of': 'taskflow' };
  const metadata = { name: w.name, namespace: opts.namespace, labels };
  // lib/metrics.ts: /healthz fails only for a wedged process (restart it), /readyz while the
  // service cannot work (no leases table, no slot): out of the Service, and rollouts wait.
  const probe = (path: '/healthz' | '/readyz', initialDelaySeconds: number, failureThreshold: number) => ({ httpGet: { path, port: 'metrics' }, initialDelaySeconds, periodSeconds: 10, timeoutSeconds: 3, failureThreshold });
  const container = {
    name: w.name,
    image: opts.image,
    args: w.args,
    env: [
      ...Object.entries({ ...w.env, ...(w.leases ? { [w.leases.setting]: w.leases.name } : {}), AWS_REGION: opts.region, METRICS_PORT: String(METRICS_PORT), METRICS_HOST: '0.0.0.0' }).map(([name, value]) => ({ name, value })),
      // A restarted pod keeps its name, so it takes its own leases (or slot) back at once.
      ...(w.instanceIdEnv ? [{ name: w.instanceIdEnv, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] : []),
      ...Object.entries(w.fromStreamConsumers ?? {}).map(([name, key]) => ({ name, valueFrom: { configMapKeyRef: { name: STREAM_CONSUMERS_CONFIG_MAP, key } } })),
      ...Object.entries(w.secretEnv ?? {}).map(([name, ref]) => ({ name, valueFrom: { secretKeyRef: { name: ref.secret, key: ref.key } } })),
    ],
    ports: [{ name: 'metrics', containerPort: METRICS_PORT }, ...Object.entries(w.ports ?? {}).map(([name, containerPort]) => ({ name, containerPort }))],
    resources: { requests: { cpu: `${w.cpuMillis}m`, memory: `${w.memoryMi}Mi` }, limits: { memory: `${w.memoryMi}Mi` } },
    readinessProbe: probe('/readyz', 5, 3),
    livenessProbe: probe('/healthz', 30, 6),
    securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    ...(w.volumeGi || w.secretFiles
      ? { volumeMounts: [...(w.volumeGi ? [{ name: 'data', mountPath: '/data' }] : []), ...(w.secretFiles ? [{ name: 'secret-files', mountPath: w.secretFiles.mountPath, readOnly: true }] : [])] }
      : {}),
  };
  if (w.volumeGi && w.kind !== 'StatefulSet') throw new Error(`${w.name}: a volume needs a StatefulSet (one claim per pod)`);
  const graceSeconds = w.terminationGracePeriodSeconds ?? 60;
  const podSpec = {
    serviceAccountName: serviceAccountName(w),
    // Spread over zones: losing one AZ keeps the pipeline up (99.95%).
    topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: labels } }],
    terminationGracePeriodSeconds: graceSeconds,
    containers: [container],
    // Readable by the container's (non-root, image-chosen) user; the container is the mount's only reader.
    ...(w.secretFiles ? { volumes: [{ name: 'secret-files', secret: { secretName: w.secretFiles.secret, defaultMode: 0o444 } }] } : {}),
  };
  const workload: Manifest = {
    apiVersion: 'apps/v1',
    kind: w.kind,
    metadata,
    spec: {
      replicas: w.replicas.min,
      selector: { matchLabels: labels },
      ...(w.kind === 'StatefulSet' ? { serviceName: w.name, podManagementPolicy: 'Parallel' } : {}),
      template: { metadata: { labels }, spec: podSpec },
      ...(w.volumeGi ? { volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: `${w.volumeGi}Gi` } } } }] } : {}),
    },
  };
  const out: Manifest[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccountName(w), namespace: opts.namespace, labels, annotations: { 'eks.amazonaws.com/role-arn': opts.roleArn } } },
    { apiVersion: 'v1', kind: 'Service', metadata, spec: { clusterIP: w.kind === 'StatefulSet' ? 'None' : undefined, selector: labels, ports: container.ports.map((p) => ({ name: p.name, port: p.containerPort, targetPort: p.name })) } },
    workload,
    { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata, spec: { maxUnavailable: 1, selector: { matchLabels: labels } } },
  ];
  const nlb = internetFacingService(w, metadata, graceSeconds);
  if (nlb) out.push(nlb);
  if (w.replicas.max > w.replicas.min) {
    out.push({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata,
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: w.kind, name: w.name },
        minReplicas: w.replicas.min,
        maxReplicas: w.replicas.max,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }],
        // Leases move on every scale step: scale down slowly.
        behavior: { scaleDown: { stabilizationWindowSeconds: 600, policies: [{ type: 'Pods', value: 1, periodSeconds: 300 }] } },
      },
    });
  }
  return out;
}
