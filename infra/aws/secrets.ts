// The deployment's secrets: each a Secrets Manager secret `taskflow/<env>/<name>` holding a JSON
// object, which the External Secrets Operator copies key by key into the Kubernetes Secret the
// workloads mount or read (workloads.ts secretFiles, secretEnv). Nothing secret is in a manifest
// or a template: the stacks create the secrets empty, operators put the values
// (infra/aws/README.md), and only the operator's role may read them.
import { ROUTER_MQTT_IDENTITY_SECRET } from './stacks/realtime.js';

export interface DeploymentSecret {
  /** Secrets Manager name `taskflow/<env>/<name>`. */
  name: string;
  kubernetesSecret: string;
  /** The JSON keys, copied as the Kubernetes Secret's keys. */
  keys: readonly string[];
  holds: string;
}

export const DEPLOYMENT_SECRETS: readonly DeploymentSecret[] = [
  { name: 'router-mqtt', kubernetesSecret: ROUTER_MQTT_IDENTITY_SECRET, keys: ['cert.pem', 'key.pem'], holds: "the router's IoT certificate and private key (realtime stack)" },
  { name: 'router-service-token', kubernetesSecret: 'taskflow-router-service-token', keys: ['token'], holds: "the router's service JWT (subject service:router, from the identity provider) for the self-hosted broker nodes: its MQTT password and the Bearer of their HTTP routes" },
  { name: 'notifications-service-token', kubernetesSecret: 'taskflow-notifications-service-token', keys: ['token'], holds: "the notifications service's JWT (subject service:notifications, from the identity provider) for the self-hosted broker nodes: its MQTT password and the Bearer of their GET /subscriptions" },
  { name: 'capture-database', kubernetesSecret: 'taskflow-capture-database', keys: ['DATABASE_URL'], holds: "capture's connection to the application database (its replication role)" },
  { name: 'gdpr', kubernetesSecret: 'taskflow-gdpr', keys: ['DATABASE_URL', 'warehouse-erasure-token'], holds: "the gdpr processor's database connection and its service JWT for the loader's erasure endpoint" },
  { name: 'audit-key', kubernetesSecret: 'taskflow-audit-key', keys: ['AUDIT_KEY'], holds: 'the key of the audit pseudonyms and row digests (audit writes them, gdpr cuts them)' },
  { name: 'opensearch', kubernetesSecret: 'taskflow-opensearch', keys: ['OPENSEARCH_URL'], holds: "the search cluster's URL with its credentials (the cluster is outside this app)" },
];

export function secretsManagerName(env: string, s: Pick<DeploymentSecret, 'name'>): string {
  return `taskflow/${env}/${s.name}`;
}

/** The operator's service account in the pipeline's namespace, trusted by its IRSA role. */
export const EXTERNAL_SECRETS_SERVICE_ACCOUNT = 'taskflow-external-secrets';
const SECRET_STORE = 'taskflow-secrets-manager';

type Manifest = Record<string, unknown>;

/** The operator's ServiceAccount, the namespace's SecretStore on Secrets Manager, and one ExternalSecret per secret. */
export function externalSecretsManifests(opts: { env: string; namespace: string; region: string; roleArn: string }): Manifest[] {
  const labels = { 'app.kubernetes.io/part-of': 'taskflow' };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: EXTERNAL_SECRETS_SERVICE_ACCOUNT, namespace: opts.namespace, labels, annotations: { 'eks.amazonaws.com/role-arn': opts.roleArn } } },
    {
      apiVersion: 'external-secrets.io/v1beta1',
      kind: 'SecretStore',
      metadata: { name: SECRET_STORE, namespace: opts.namespace, labels },
      spec: { provider: { aws: { service: 'SecretsManager', region: opts.region, auth: { jwt: { serviceAccountRef: { name: EXTERNAL_SECRETS_SERVICE_ACCOUNT } } } } } },
    },
    ...DEPLOYMENT_SECRETS.map((s) => ({
      apiVersion: 'external-secrets.io/v1beta1',
      kind: 'ExternalSecret',
      metadata: { name: s.kubernetesSecret, namespace: opts.namespace, labels },
      spec: {
        // A replaced certificate or rotated key reaches the Secret within the hour; pods read it at start.
        refreshInterval: '1h',
        secretStoreRef: { name: SECRET_STORE, kind: 'SecretStore' },
        target: { name: s.kubernetesSecret, creationPolicy: 'Owner' },
        data: s.keys.map((key) => ({ secretKey: key, remoteRef: { key: secretsManagerName(opts.env, s), property: key } })),
      },
    })),
  ];
}
