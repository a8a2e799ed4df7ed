// IRSA roles for the EKS workloads, least privilege: each service account may touch only the
// stream, tables and IoT actions its service uses. The manifests (workloads.ts) name these roles.
import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secrets from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { GDPR_REQUESTS_TABLE_KEY } from '../../../gdpr/request-store.js';
import { ROUTER_SETTINGS } from '../../../router/config.js';
import { NOTIFICATION_SETTINGS } from '../../../notifications/config.js';
import { SUBJECT_KEYS_TABLE_KEY } from '../../../lib/subject-keys.js';
import { INBOX_INDEX_UNREAD } from '../../../notifications/tables.js';
import { RAW_PREFIX } from './analytics.js';
import type { Settings } from '../settings.js';
import { grantStream, grantTable } from '../grants.js';
import { DEPLOYMENT_SECRETS, EXTERNAL_SECRETS_SERVICE_ACCOUNT, secretsManagerName } from '../secrets.js';
import { importedKey } from './compliance.js';
import { CLOUDWATCH_AGENT_SERVICE_ACCOUNT, metricsLogGroupName } from '../metrics-shipping.js';
import { serviceAccountName, type Workload } from '../workloads.js';

export interface ServicesDeps {
  changes: kinesis.IStream;
  presence: kinesis.IStream;
  consumers: Record<string, kinesis.CfnStreamConsumer>;
  tables: Record<string, dynamodb.ITableV2>;
  /** The environment's KMS key, which wraps the per-subject data keys (crypto-shredding). */
  dataKey: kms.IKey;
  /** The archiver's Firehose delivery stream into the raw archive. */
  rawDelivery: firehose.CfnDeliveryStream;
}

/** What lib/dlq.ts's writer calls (put: conditional PutItem, large entries in parts by BatchWriteItem; reads back by GetItem/BatchGetItem). */
const DLQ_WRITER = ['PutItem', 'BatchWriteItem', 'GetItem', 'BatchGetItem'];
/** What packages/stream calls on the stream (polling) and on its lease table (conditional writes, one Query per consumer name, a Query of one state slot when a lease is taken). */
const STREAM_READER = ['ListShards', 'GetShardIterator', 'GetRecords'];
const LEASES = ['Query', 'PutItem', 'DeleteItem'];
/** What lib/dynamo-memberships.ts's projection calls (router and notifications keep one each). */
const MEMBERSHIPS = ['Query', 'GetItem', 'PutItem'];

export function roleName(settings: Settings, workload: Pick<Workload, 'name'>): string {
  return `taskflow-${settings.env}-${workload.name}`;
}

export class ServicesStack extends Stack {
  readonly roles: Record<string, iam.Role> = {};
  /** The router's manifest publishes through the IoT data-plane API (ROUTER_PUBLISHER=iot-data), so its role holds iot:Publish. */
  readonly routerPublishesByDataPlane: boolean;
  /** The router's manifest publishes to the self-hosted broker tier (ROUTER_BROKERS): it needs no IoT action and no subscription store. */
  readonly routerPublishesToTier: boolean;
  /** The notifications manifest publishes through the IoT data-plane API (NOTIFICATIONS_PUBLISHER=iot-data, the IoT Core mode), so its role holds iot:Publish; with the broker tier it publishes over MQTT with its service token and needs no IoT action. */
  readonly notificationsPublishesByDataPlane: boolean;
  /** The deployment secrets this stack creates (all of secrets.ts but the router's certificate). */
  readonly secrets: secrets.Secret[];
  readonly secretsOperator: iam.Role;
  /** The CloudWatch agent's (metrics-shipping.ts): it writes the scraped metrics as EMF logs into its log group. */
  readonly metricsAgent: iam.Role;

  constructor(scope: Construct, id: string, settings: Settings, workloads: readonly Workload[], deps: ServicesDeps, props?: StackProps) {
    super(scope, id, props);
    const routerEnv = workloads.find((w) => w.name === 'router')?.env ?? {};
    this.routerPublishesByDataPlane = routerEnv[ROUTER_SETTINGS.publisher.name] === 'iot-data';
    this.routerPublishesToTier = routerEnv[ROUTER_SETTINGS.brokers.name] !== undefined;
    this.notificationsPublishesByDataPlane = workloads.find((w) => w.name === 'notifications')?.env[NOTIFICATION_SETTINGS.publisher.name] === 'iot-data';
    const provider = iam.OpenIdConnectProvider.fromOpenIdConnectProviderArn(this, 'EksOidc', `arn:${this.partition}:iam::${this.account}:oidc-provider/${settings.eksOidcProvider}`);
    /** IRSA: only this service account of the pipeline's namespace may assume the role. */
    const trustedBy = (serviceAccount: string) =>
      new iam.OpenIdConnectPrincipal(provider, {
        StringEquals: {
          [`${settings.eksOidcProvider}:sub`]: `system:serviceaccount:${settings.namespace}:${serviceAccount}`,
          [`${settings.eksOidcProvider}:aud`]: 'sts.amazonaws.com',
        },
      });
    for (const w of workloads) {
      this.roles[w.name] = new iam.Role(this, `Role-${w.name}`, { roleName: roleName(settings, w), description: `IRSA role of the ${w.name} service account`, assumedBy: trustedBy(serviceAccountName(w)) });
    }
    const table = (key: string) => {
      const t = deps.tables[key];
      if (!t) throw new Error(`no table ${key}`);
      return t;
    };
    const dataKey = importedKey(this, deps.dataKey);
    // Exactly the calls each service makes (docs/THREAT_MODEL.md's grants table, which
    // infra/aws/iam.test.ts holds equal to the synthesized policies), not CDK's grant* sets.
    const capture = this.roles.capture;
    if (capture) {
      grantStream(capture, deps.changes, ['PutRecords']);
      grantTable(capture, table('checkpoints'), ['GetItem', 'PutItem']);
      grantTable(capture, table('dlq'), DLQ_WRITER);
      // Personal fields: creates subject keys (GenerateDataKey, conditional PutItem) and reads them back (GetItem, Decrypt).
      grantTable(capture, table(SUBJECT_KEYS_TABLE_KEY), ['GetItem', 'PutItem']);
      dataKey.grant(capture, 'kms:GenerateDataKey', 'kms:Decrypt');
    }
    // A reader of the change stream (packages/stream): the stream, its enhanced fan-out
    // consumer when the stream stack registers one for it, its leases and the dead-letter table.
    // The lease table is shared by every reader, keyed by consumer name: a role may touch only its
    // own reader's leases (dynamodb:LeadingKeys), so no reader can take over another's shards.
    const leaseNames = new Map(workloads.flatMap((w) => (w.leases ? [[w.name, w.leases.name] as const] : [])));
    const reader = (role: iam.Role, workload: string, efoName: string) => {
      const leaseName = leaseNames.get(workload);
      if (!leaseName) throw new Error(`workload ${workload} reads the stream but declares no lease name`);
      grantStream(role, deps.changes, STREAM_READER);
      const efo = deps.consumers[efoName];
      if (efo) role.addToPolicy(new iam.PolicyStatement({ actions: ['kinesis:SubscribeToShard', 'kinesis:DescribeStreamConsumer'], resources: [efo.attrConsumerArn] }));
      grantTable(role, table('leases'), LEASES, [leaseName]);
      grantTable(role, table('dlq'), DLQ_WRITER);
    };
    const iot = (resource: string) => `arn:${this.partition}:iot:${this.region}:${this.account}:${resource}`;
    const router = this.roles.router;
    if (router) {
      reader(router, 'router', 'router');
      grantStream(router, deps.presence, STREAM_READER);
      grantTable(router, table('changelog'), ['Query', 'GetItem', 'PutItem']);
      // DeleteItem: an erased subject's removed membership is deleted, not kept as a tombstone (lib/membership-events.ts projectionSteps).
      grantTable(router, table('memberships'), [...MEMBERSHIPS, 'DeleteItem']);
      // Decrypts personal fields for browsers: reads subject keys, never writes them (the key's Decrypt comes with the table).
      grantTable(router, table(SUBJECT_KEYS_TABLE_KEY), ['GetItem']);
      // With the broker tier the nodes are the subscription source (GET /subscriptions) and
      // revocation is their DELETE /connections, both with the router's service token: no
      // subscription store, no IoT action. With IoT Core:
      if (!this.routerPublishesToTier) {
        grantTable(router, table('subscriptions'), ['Query', 'Scan', 'PutItem', 'BatchWriteItem']);
        // Its MQTT connection (publish, lifecycle topics) is its X.509 certificate's, under the IoT
        // policy taskflow-<env>-router (realtime stack): IAM grants none of that. Only a manifest
        // that publishes through the data-plane API (ROUTER_PUBLISHER=iot-data) gets iot:Publish.
        if (this.routerPublishesByDataPlane) {
          router.addToPolicy(new iam.PolicyStatement({ actions: ['iot:Publish'], resources: [iot('topic/taskflow/v1/ws/*')] }));
        }
        // Revocation: disconnect a browser whose membership was removed.
        router.addToPolicy(new iam.PolicyStatement({ actions: ['iot:DeleteConnection'], resources: [iot('client/*')] }));
      }
    }
    const broker = this.roles.broker;
    if (broker) {
      // broker/service.ts authorizes subscriptions from the router's membership projection
      // (lib/dynamo-memberships.ts: the truncate marker by GetItem, a user's memberships by
      // Query), as the IoT authorizer Lambda does; it writes nothing and reads nothing else.
      grantTable(broker, table('memberships'), ['GetItem', 'Query']);
    }
    const search = this.roles.search;
    if (search) {
      reader(search, 'search', 'search');
      // Decrypts before indexing (lib/field-crypto readerKeyStore): subject keys read, Decrypt with the table's key.
      grantTable(search, table(SUBJECT_KEYS_TABLE_KEY), ['GetItem']);
    }
    const notifications = this.roles.notifications;
    if (notifications) {
      reader(notifications, 'notifications', 'notifications');
      grantTable(notifications, table(SUBJECT_KEYS_TABLE_KEY), ['GetItem']);
      // notifications/inbox.ts: conditional PutItem per notification, Query (list; the sparse unread index for counts), UpdateItem (mark read).
      const inbox = table('notifications');
      grantTable(notifications, inbox, ['PutItem', 'Query', 'UpdateItem']);
      iam.Grant.addToPrincipal({ grantee: notifications, actions: ['dynamodb:Query'], resourceArns: [`${inbox.tableArn}/index/${INBOX_INDEX_UNREAD}`] });
      grantTable(notifications, table('notification-watchers'), ['Query', 'PutItem']);
      grantTable(notifications, table('notification-memberships'), MEMBERSHIPS);
      // Live delivery through the IoT data plane (NOTIFICATIONS_PUBLISHER=iot-data): users' topics only, never a project's.
      // With the broker tier (NOTIFICATIONS_BROKERS) it publishes to the nodes with its service token: no IoT action.
      if (this.notificationsPublishesByDataPlane) notifications.addToPolicy(new iam.PolicyStatement({ actions: ['iot:Publish'], resources: [iot('topic/taskflow/v1/ws/*/users/*')] }));
    }
    // The audit trail's buckets (compliance stack), by the names the manifests give (AUDIT_BUCKET, AUDIT_IDENTITY_BUCKET).
    const auditTrail = s3.Bucket.fromBucketName(this, 'AuditTrail', settings.auditBucket);
    const auditIdentities = s3.Bucket.fromBucketName(this, 'AuditIdentities', settings.auditIdentityBucket);
    const audit = this.roles.audit;
    if (audit) {
      reader(audit, 'audit', 'audit');
      // The erased-subjects list (lib/subject-keys.ts erasedSubjectLookup): a tombstone read per subject, no key unwrapped.
      grantTable(audit, table(SUBJECT_KEYS_TABLE_KEY), ['GetItem']);
      // audit/s3-store.ts as the service calls it: create = HEAD (s3:GetObject) then a conditional
      // PutObject carrying its own Object Lock retention (s3:PutObjectRetention); get; list
      // (ListObjectsV2; it also makes a HEAD of a missing key a 404, not a 403). Never a delete,
      // never a change of the bucket's lock or a bypass.
      audit.addToPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [auditTrail.bucketArn] }));
      audit.addToPolicy(new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObject'], resources: [auditTrail.arnForObjects('*')] }));
      // The shard writer only ever puts identity mappings (audit/shard-writer.ts); reading and
      // deleting them is for the gdpr processor and the operator's `taskflow audit query|forget`.
      audit.addToPolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [auditIdentities.arnForObjects('*')] }));
      // SSE-KMS objects under the environment key: a PUT generates the data key, a GET decrypts it.
      dataKey.grant(audit, 'kms:GenerateDataKey', 'kms:Decrypt');
    }
    const archiver = this.roles['analytics-archiver'];
    if (archiver) {
      reader(archiver, 'analytics-archiver', 'archiver');
      archiver.addToPolicy(new iam.PolicyStatement({ actions: ['firehose:PutRecordBatch'], resources: [deps.rawDelivery.attrArn] }));
    }
    const loader = this.roles['analytics-loader'];
    if (loader) {
      // lib/object-store.ts S3ObjectStore: lists and reads the raw archive, and deletes past its
      // retention (analytics/retention.ts); objects are SSE-KMS under the environment key. By its
      // name (the one the loader's manifest gives), not a cross-stack reference.
      const archive = s3.Bucket.fromBucketName(this, 'RawArchive', settings.rawArchiveBucket);
      loader.addToPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [archive.bucketArn] }));
      loader.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:DeleteObject'], resources: [archive.arnForObjects(`${RAW_PREFIX}*`)] }));
      dataKey.grant(loader, 'kms:Decrypt');
      // analytics/quarantine.ts: archive lines and objects it cannot load go to the dead-letter table.
      grantTable(loader, table('dlq'), DLQ_WRITER);
    }
    const gdpr = this.roles.gdpr;
    if (gdpr) {
      // gdpr/request-store.ts: conditional puts, parts deleted on completion, Scan for the open requests.
      grantTable(gdpr, table(GDPR_REQUESTS_TABLE_KEY), ['GetItem', 'PutItem', 'DeleteItem', 'Scan']);
      // Destroys subject keys: the tombstone replaces the wrapped key (conditional PutItem); no KMS call.
      grantTable(gdpr, table(SUBJECT_KEYS_TABLE_KEY), ['GetItem', 'PutItem']);
      // The erasure sinks it opens (<service>/erasure-sink.ts), each a whole-table Scan: the
      // router's changelog rewritten in place (conditional UpdateItem), the notifications tables'
      // items holding the subject deleted (lib/dynamo-erasure.ts).
      grantTable(gdpr, table('changelog'), ['Scan', 'UpdateItem']);
      // router/erasure-sink.ts router-memberships: the subject's partition, queried and deleted.
      grantTable(gdpr, table('memberships'), ['Query', 'DeleteItem']);
      for (const key of ['notifications', 'notification-watchers', 'notification-memberships']) grantTable(gdpr, table(key), ['Scan', 'DeleteItem']);
      // The audit trail's pseudonym cut (audit/erasure-sink.ts, identities.ts): lists the identity
      // mappings (ListObjectsV2 under identities/, which audit/s3-store.ts sends to the identity
      // bucket only), reads each (GetObject, which decrypts) and deletes the subject's (DeleteObject).
      // Nothing on the Object Lock bucket.
      gdpr.addToPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [auditIdentities.bucketArn] }));
      gdpr.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:DeleteObject'], resources: [auditIdentities.arnForObjects('*')] }));
      dataKey.grant(gdpr, 'kms:Decrypt');
      // lib/erasure-sink.ts: the dead letters holding the subject (Scan for heads and orphan parts, GetItem/BatchGetItem for parts), deleted with their parts.
      grantTable(gdpr, table('dlq'), ['Scan', 'GetItem', 'BatchGetItem', 'DeleteItem']);
    }
    // The deployment's secrets (secrets.ts), created empty: operators put the values. The router's
    // certificate is the realtime stack's secret, named here. Only the External Secrets
    // Operator's role reads them; the workloads get them as Kubernetes Secrets.
    this.secretsOperator = new iam.Role(this, 'ExternalSecrets', {
      roleName: `taskflow-${settings.env}-external-secrets`,
      description: 'IRSA role of the External Secrets Operator in the pipeline namespace: reads the deployment secrets',
      assumedBy: trustedBy(EXTERNAL_SECRETS_SERVICE_ACCOUNT),
    });
    this.secrets = DEPLOYMENT_SECRETS.filter((d) => d.name !== 'router-mqtt').map(
      (d) => new secrets.Secret(this, `Secret-${d.name}`, { secretName: secretsManagerName(settings.env, d), description: `${d.holds}: JSON keys ${d.keys.join(', ')}; synced into the Kubernetes Secret ${d.kubernetesSecret}` }),
    );
    for (const secret of [...this.secrets, secrets.Secret.fromSecretNameV2(this, 'RouterMqttIdentity', secretsManagerName(settings.env, { name: 'router-mqtt' }))]) secret.grantRead(this.secretsOperator);
    // The alarms' metrics: the agent's EMF log events become metrics of namespace TaskFlow; the
    // events themselves are kept a week (CloudWatch Logs encrypts them at rest).
    const metricsLog = new logs.LogGroup(this, 'Metrics', { logGroupName: metricsLogGroupName(settings.env), retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
    this.metricsAgent = new iam.Role(this, 'CloudWatchAgent', {
      roleName: `taskflow-${settings.env}-cloudwatch-agent`,
      description: 'IRSA role of the CloudWatch agent in the pipeline namespace: writes the scraped service metrics (EMF) into its log group',
      assumedBy: trustedBy(CLOUDWATCH_AGENT_SERVICE_ACCOUNT),
    });
    metricsLog.grant(this.metricsAgent, 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams');
  }
}
