// The CDK app's important properties, with CloudFormation validation off (it adds ~20 s per
// synth; infra/aws/nag.test.ts is the one synth with it and with cdk-nag).
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { alarms, BROKER_NODES_AWAY_AT_ONCE, SERVICE_NAMESPACE } from '../alarms.js';
import { TABLES } from '../local/tables.js';
import { buildApp, type PipelineApp } from './app.js';
import { brokerTier, changelogCapacity, dynamoWrites, kinesisShards, LEASE_WORKERS, leaseCapacity, streamReaders } from './cost/model.js';
import { loadPrices, loadScale } from './cost/load.js';
import { CHANGELOG_TABLE } from '../../router/dynamo-changelog.js';
import { authorizerBundle } from './stacks/realtime.js';
import { roleName } from './stacks/services.js';
import { brokerNodeUrls, manifests, STREAM_CONSUMERS_CONFIG_MAP, workloads } from './workloads.js';
import { defaultSettings } from './settings.js';
import { BROKER_SETTINGS, loadConfig as loadBrokerConfig } from '../../broker/config.js';
import { DEPLOYMENT_SECRETS, externalSecretsManifests, secretsManagerName } from './secrets.js';
import { cloudWatchAgentManifests, metricDeclarations, metricsLogGroupName, scrapeConfig, SCRAPE_JOB, shippedMetrics } from './metrics-shipping.js';
import { loadArchiverConfig, loadLoaderConfig } from '../../analytics/config.js';
import { loadAuditStoreConfig, loadConfig as loadAuditConfig } from '../../audit/config.js';
import { openErasureSinks as openAuditErasureSinks } from '../../audit/erasure-sink.js';
import { loadConfig as loadCaptureConfig } from '../../capture/config.js';
import { loadConfig as loadGdprConfig } from '../../gdpr/config.js';
import { loadConfig as loadNotificationsConfig } from '../../notifications/config.js';
import { loadConfig as loadRouterConfig } from '../../router/config.js';
import { loadConfig as loadSearchConfig } from '../../search/config.js';

let built: PipelineApp;
const t: Record<string, Template> = {};
/** The same app with IoT Core as the browsers' broker (settings `broker: 'iot-core'`). */
let iotCore: PipelineApp;

beforeAll(() => {
  built = buildApp({ validation: false });
  for (const [name, stack] of Object.entries(built.stacks)) t[name] = Template.fromStack(stack);
  iotCore = buildApp({ validation: false, settings: { ...defaultSettings(), broker: 'iot-core' } });
});

const tpl = (name: string): Template => {
  const found = t[name];
  if (!found) throw new Error(`no stack ${name}`);
  return found;
};

describe('stream stack', () => {
  it('sizes the change stream from the cost model, keeps 7 days and registers the EFO readers', () => {
    const shards = kinesisShards(loadScale('seed')).shards;
    tpl('stream').hasResourceProperties('AWS::Kinesis::Stream', { Name: 'taskflow-changes', ShardCount: shards, RetentionPeriodHours: 168, StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' } });
    const consumers = Object.values(tpl('stream').findResources('AWS::Kinesis::StreamConsumer')).map((r) => (r as { Properties: { ConsumerName: string } }).Properties.ConsumerName);
    expect(consumers.sort()).toEqual([...loadScale('seed').services.efo_consumers].sort());
  });
});

describe('state stack', () => {
  it('declares every table of infra/local/tables.ts with the same name and keys, TTL where the owner expires items, and PITR unless the owner refuses backups', () => {
    for (const spec of TABLES) {
      const keys = (spec.table.KeySchema ?? []).map((k) => ({ AttributeName: k.AttributeName, KeyType: k.KeyType }));
      tpl('state').hasResourceProperties('AWS::DynamoDB::GlobalTable', {
        TableName: spec.table.TableName,
        KeySchema: keys,
        AttributeDefinitions: Match.arrayWith((spec.table.AttributeDefinitions ?? []).map((a) => ({ AttributeName: a.AttributeName, AttributeType: a.AttributeType }))),
        ...(spec.table.GlobalSecondaryIndexes?.length ? { GlobalSecondaryIndexes: spec.table.GlobalSecondaryIndexes.map((g) => Match.objectLike({ IndexName: g.IndexName, KeySchema: g.KeySchema })) } : {}),
        ...(spec.ttlAttribute ? { TimeToLiveSpecification: { AttributeName: spec.ttlAttribute, Enabled: true } } : {}),
        Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: spec.backups !== false }, DeletionProtectionEnabled: true })],
      });
    }
    tpl('state').resourceCountIs('AWS::DynamoDB::GlobalTable', TABLES.length);
    // A restorable backup of the subject keys would bring an erased subject's key back.
    tpl('state').hasResourceProperties('AWS::DynamoDB::GlobalTable', { TableName: 'taskflow-subject-keys', KeySchema: [{ AttributeName: 'kid', KeyType: 'HASH' }], Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false } })] });
  });

  it('provisions the changelog and the lease table with auto scaling between the bounds the bill assumes; every other table is on-demand', () => {
    const c = changelogCapacity(loadScale('seed'), loadPrices());
    if (!c) throw new Error('the default levers provision the changelog');
    // The floor is the average's capacity at the target: what the bill's off-peak hours pay for.
    expect(c.write.min).toBe(Math.ceil(dynamoWrites(loadScale('seed')).changelog / 0.7));
    const scaling = (x: { min: number; max: number }) => ({ MinCapacity: x.min, MaxCapacity: x.max, TargetTrackingScalingPolicyConfiguration: { TargetValue: c.targetUtilizationPercent } });
    tpl('state').hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TableName: CHANGELOG_TABLE,
      BillingMode: 'PROVISIONED',
      WriteProvisionedThroughputSettings: { WriteCapacityAutoScalingSettings: scaling(c.write) },
      Replicas: [Match.objectLike({ ReadProvisionedThroughputSettings: { ReadCapacityAutoScalingSettings: scaling(c.read) } })],
    });
    // The lease table: the bounds settings carries, the cost model's at the seed.
    const l = built.settings.leaseCapacity;
    if (!l) throw new Error('the default levers provision the lease table');
    expect(l).toEqual(leaseCapacity(loadScale('seed'), loadPrices()));
    const w = dynamoWrites(loadScale('seed'));
    expect(l.write.min).toBe(Math.ceil((w.checkpoints + w.leases) / 0.7));
    expect(l.write.max).toBeGreaterThan(l.write.min);
    expect(l.read.max).toBeGreaterThan(l.read.min);
    const leaseTable = TABLES.find((spec) => spec.key === 'leases')?.table.TableName;
    const leaseScaling = (x: { min: number; max: number }) => ({ MinCapacity: x.min, MaxCapacity: x.max, TargetTrackingScalingPolicyConfiguration: { TargetValue: l.targetUtilizationPercent } });
    tpl('state').hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TableName: leaseTable,
      BillingMode: 'PROVISIONED',
      WriteProvisionedThroughputSettings: { WriteCapacityAutoScalingSettings: leaseScaling(l.write) },
      Replicas: [Match.objectLike({ ReadProvisionedThroughputSettings: { ReadCapacityAutoScalingSettings: leaseScaling(l.read) } })],
    });
    const others = Object.values(tpl('state').findResources('AWS::DynamoDB::GlobalTable'))
      .map((r) => (r as { Properties: { TableName: string; BillingMode: string } }).Properties)
      .filter((p) => p.TableName !== CHANGELOG_TABLE && p.TableName !== leaseTable);
    expect(others.length).toBe(TABLES.length - 2);
    expect(others.map((p) => p.BillingMode)).toEqual(others.map(() => 'PAY_PER_REQUEST'));
  });

  it("counts the lease table's reads with the pods the workloads run: each stream reader's replicas", () => {
    // The readers' workloads by the scale's reader names (the archiver's workload is analytics-archiver).
    const workloadOf: Record<string, string> = { archiver: 'analytics-archiver' };
    const list = workloads(built.settings);
    const replicas = Object.fromEntries(streamReaders(loadScale('seed')).map((reader) => [reader, list.find((w) => w.name === (workloadOf[reader] ?? reader))?.replicas]));
    expect(replicas).toEqual(LEASE_WORKERS);
    // and every workload holding leases is one of those readers
    expect(list.filter((w) => w.leases).map((w) => w.name).sort()).toEqual(Object.keys(LEASE_WORKERS).map((r) => workloadOf[r] ?? r).sort());
  });
});

describe('realtime stack', () => {
  it('runs the authorizer on a current Node runtime and registers it unsigned (it verifies the JWT itself)', () => {
    tpl('realtime').hasResourceProperties('AWS::Lambda::Function', { Runtime: 'nodejs24.x', Architectures: ['arm64'], Handler: 'index.handler' });
    tpl('realtime').hasResourceProperties('AWS::IoT::Authorizer', { AuthorizerName: 'taskflow-jwt', SigningDisabled: true, Status: 'ACTIVE' });
    tpl('realtime').hasResourceProperties('AWS::Lambda::Permission', { Principal: 'iot.amazonaws.com', Action: 'lambda:InvokeFunction' });
  });

  it('the bundled authorizer is the router module: it answers a connect without a token with a deny', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { JWT_SECRET: 'bundle-test-secret-of-at-least-32-bytes', JWT_ISSUER: 'taskflow', JWT_AUDIENCE: 'taskflow-realtime', IOT_ACCOUNT_ID: '123456789012', AWS_REGION: 'us-east-1', DYNAMODB_ENDPOINT: 'http://127.0.0.1:9' });
    try {
      const mod = createRequire(import.meta.url)(join(authorizerBundle(), 'index.js')) as { handler: (e: unknown) => Promise<{ isAuthenticated: boolean }> };
      await expect(mod.handler({ protocolData: { mqtt: { clientId: 'c1' } } })).resolves.toMatchObject({ isAuthenticated: false });
    } finally {
      process.env = saved;
    }
  });

  it("gives publishing to the router's certificate alone: its policy publishes under taskflow/v1/ws/ as the router's client ids, and the authorizer grants no token publish", () => {
    const policies = Object.values(tpl('realtime').findResources('AWS::IoT::Policy')) as { Properties: { PolicyName: string; PolicyDocument: { Statement: { Action: string; Resource: string }[] } } }[];
    expect(policies.map((p) => p.Properties.PolicyName)).toEqual(['taskflow-prod-router']);
    const statements = policies[0]!.Properties.PolicyDocument.Statement;
    const arn = (kind: string, name: string) => `arn:aws:iot:us-east-1:123456789012:${kind}/${name}`;
    expect(statements.filter((s) => s.Action === 'iot:Publish').map((s) => s.Resource)).toEqual([arn('topic', 'taskflow/v1/ws/*')]);
    expect(statements.filter((s) => s.Action === 'iot:Connect').map((s) => s.Resource)).toEqual([arn('client', 'service:router.?*')]);
    expect(statements.some((s) => s.Action === '*' || s.Action === 'iot:*' || s.Resource === '*')).toBe(false);
    tpl('realtime').hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ IOT_PUBLISHER_USER_IDS: 'none' }) } });
    tpl('realtime').hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'taskflow/prod/router-mqtt' });
    expect(Object.keys(tpl('realtime').findOutputs('RouterPolicyName'))).toEqual(['RouterPolicyName']);
  });

  it('carries lifecycle and subscription events to the presence stream, keyed by client', () => {
    tpl('realtime').hasResourceProperties('AWS::IoT::TopicRule', {
      TopicRulePayload: Match.objectLike({ Sql: Match.stringLikeRegexp("\\$aws/events/subscriptions/"), Actions: [{ Kinesis: Match.objectLike({ PartitionKey: '${clientId}' }) }] }),
    });
  });
});

describe('analytics stack', () => {
  it('archives the archiver\'s gzipped NDJSON under raw/ (Firehose compressing nothing, objects named .gz) for 30 days and loads curated rows into Snowflake', () => {
    tpl('analytics').hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', { DeliveryStreamName: 'taskflow-raw-archive', ExtendedS3DestinationConfiguration: Match.objectLike({ CompressionFormat: 'UNCOMPRESSED', FileExtension: '.gz', Prefix: 'raw/' }) });
    tpl('analytics').hasResourceProperties('AWS::S3::Bucket', { LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: 30, Status: 'Enabled' })]) } });
    tpl('analytics').hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', { DeliveryStreamName: 'taskflow-curated-snowflake', SnowflakeDestinationConfiguration: Match.objectLike({ Database: 'TASKFLOW', S3BackupMode: 'FailedDataOnly', SecretsManagerConfiguration: Match.objectLike({ Enabled: true }) }) });
  });
});

describe('compliance stack', () => {
  it('rotates the key and keeps audit objects under Object Lock in compliance mode', () => {
    tpl('compliance').hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    tpl('compliance').hasResourceProperties('AWS::S3::Bucket', { ObjectLockEnabled: true, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } } } });
  });
});

describe('database stack', () => {
  it('turns on logical replication and PostgreSQL 17 slot synchronization', () => {
    tpl('database').hasResourceProperties('AWS::RDS::DBParameterGroup', { Family: 'postgres17', Parameters: Match.objectLike({ 'rds.logical_replication': '1', synchronized_standby_slots: 'taskflow_standby' }) });
    tpl('database').hasResourceProperties('AWS::RDS::DBParameterGroup', { Family: 'postgres17', Parameters: Match.objectLike({ 'rds.logical_replication': '1', sync_replication_slots: '1', hot_standby_feedback: '1' }) });
  });
});

describe('services stack and manifests', () => {
  const statementsOf = (role: string): { Action: string | string[]; Resource: unknown }[] => {
    const policies = Object.values(tpl('services').findResources('AWS::IAM::Policy')) as { Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } } }[];
    const logicalId = Object.entries(tpl('services').findResources('AWS::IAM::Role')).find(([, r]) => (r as { Properties: { RoleName: string } }).Properties.RoleName === role)?.[0];
    return policies.filter((p) => p.Properties.Roles.some((r) => r.Ref === logicalId)).flatMap((p) => p.Properties.PolicyDocument.Statement);
  };
  const actions = (role: string) => statementsOf(role).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

  it('trusts only the service account of each workload (IRSA)', () => {
    for (const w of workloads(built.settings)) {
      tpl('services').hasResourceProperties('AWS::IAM::Role', {
        RoleName: roleName(built.settings, w),
        AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: { [`${built.settings.eksOidcProvider}:sub`]: `system:serviceaccount:taskflow:taskflow-${w.name}`, [`${built.settings.eksOidcProvider}:aud`]: 'sts.amazonaws.com' } } })] },
      });
    }
  });

  it('gives capture the stream write and its tables only, and the router no write to the stream', () => {
    const capture = actions(roleName(built.settings, { name: 'capture' }));
    expect(capture).toEqual(expect.arrayContaining(['kinesis:PutRecords', 'kms:GenerateDataKey', 'kms:Decrypt']));
    expect(capture.some((a) => a.startsWith('iot:'))).toBe(false);
    expect(JSON.stringify(statementsOf(roleName(built.settings, { name: 'capture' })))).not.toContain('Tablechangelog');
    const router = actions(roleName(built.settings, { name: 'router' }));
    expect(router).toContain('kinesis:SubscribeToShard');
    // The broker tier is reached with the router's service token: no IoT action, no subscription store.
    expect(router.filter((a) => a.startsWith('iot:'))).toEqual([]);
    expect(JSON.stringify(statementsOf(roleName(built.settings, { name: 'router' })))).not.toContain('Tablesubscriptions');
    expect(router).not.toContain('kinesis:PutRecords');
    expect(router).toContain('dynamodb:GetItem'); // the subject keys (and the changelog): read, never written by the router
    expect(router.some((a) => a === '*' || a === 'iot:*' || a === 'dynamodb:*')).toBe(false);
  });

  it('runs the router as a StatefulSet with HPA and PDB, capture as a fixed pair, both probed on /healthz and /readyz on all interfaces', () => {
    const docs = (name: string) => {
      const w = workloads(built.settings).find((x) => x.name === name);
      if (!w) throw new Error(name);
      return manifests(w, { namespace: 'taskflow', image: 'img', roleArn: 'arn:aws:iam::1:role/r', region: 'us-east-1' }) as { kind: string; spec?: Record<string, unknown>; metadata: { annotations?: Record<string, string> } }[];
    };
    const router = docs('router');
    expect(router.map((d) => d.kind)).toEqual(['ServiceAccount', 'Service', 'StatefulSet', 'PodDisruptionBudget', 'HorizontalPodAutoscaler']);
    expect(router[0]?.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::1:role/r');
    const container = JSON.stringify(router[2]);
    expect(container).toContain('"readinessProbe":{"httpGet":{"path":"/readyz","port":"metrics"');
    expect(container).toContain('"livenessProbe":{"httpGet":{"path":"/healthz","port":"metrics"');
    // On 127.0.0.1 (the default) the kubelet, which probes the pod's IP, would never get an answer.
    for (const name of ['router', 'capture']) expect(JSON.stringify(docs(name))).toContain('"name":"METRICS_HOST","value":"0.0.0.0"');
    expect(container).toContain('"name":"ROUTER_PAYLOAD_MODE","value":"thin"');
    // The self-hosted broker tier: every node, and the service token from its deployment secret; no IoT endpoint or certificate.
    const broker = workloads(built.settings).find((w) => w.name === 'broker')!;
    expect(container).toContain(`"name":"ROUTER_BROKERS","value":"${brokerNodeUrls(broker, 'taskflow').join(',')}"`);
    expect(container).toContain('"name":"ROUTER_MQTT_PASSWORD","valueFrom":{"secretKeyRef":{"name":"taskflow-router-service-token","key":"token"}}');
    expect(container).not.toContain('MQTT_URL');
    expect(container).not.toContain('router-mqtt');
    // Notifications publish to the same nodes over MQTT with their own service token, and their role holds no IoT action.
    const notifications = JSON.stringify(docs('notifications'));
    expect(notifications).toContain('"name":"NOTIFICATIONS_PUBLISHER","value":"mqtt"');
    expect(notifications).toContain(`"name":"NOTIFICATIONS_BROKERS","value":"${brokerNodeUrls(broker, 'taskflow').join(',')}"`);
    expect(notifications).toContain('"name":"NOTIFICATIONS_MQTT_PASSWORD","valueFrom":{"secretKeyRef":{"name":"taskflow-notifications-service-token","key":"token"}}');
    expect(notifications).not.toContain('iot-data');
    expect(notifications).not.toContain('MQTT_URL');
    const tierPolicies = tpl('services').findResources('AWS::IAM::Policy');
    const [notificationsRole] = Object.entries(tpl('services').findResources('AWS::IAM::Role')).find(([, r]) => (r as { Properties: { RoleName: string } }).Properties.RoleName === 'taskflow-prod-notifications')!;
    expect(JSON.stringify(Object.values(tierPolicies).filter((p) => (p as { Properties: { Roles: { Ref: string }[] } }).Properties.Roles.some((r) => r.Ref === notificationsRole)))).not.toContain('iot:');
    // The router reads by enhanced fan-out as the stream stack's `router` consumer, whose ARN the deployment puts in the ConfigMap.
    expect(container).toContain('"name":"ROUTER_READER","value":"fanout"');
    expect(container).toContain(`"name":"ROUTER_FANOUT_CONSUMER_ARN","valueFrom":{"configMapKeyRef":{"name":"${STREAM_CONSUMERS_CONFIG_MAP}","key":"router"}}`);
    expect(Object.keys(tpl('stream').findOutputs('EfoConsumerArnrouter'))).toEqual(['EfoConsumerArnrouter']);
    expect(() => workloads({ ...built.settings, efoConsumers: ['notifications', 'archiver'] })).toThrow(/EFO consumer named router/);
    expect(() => workloads({ ...built.settings, efoConsumers: ['router', 'notifications'] })).toThrow(/EFO consumer named archiver/);
    // Notifications and the archiver read by fan-out too, as their own consumers; search and audit poll.
    for (const name of ['notifications', 'analytics-archiver']) {
      const json = JSON.stringify(docs(name));
      expect(json).toContain('"name":"KINESIS_READER","value":"fanout"');
      expect(json).toContain(`"name":"KINESIS_FANOUT_CONSUMER_ARN","valueFrom":{"configMapKeyRef":{"name":"${STREAM_CONSUMERS_CONFIG_MAP}","key":"${name === 'notifications' ? 'notifications' : 'archiver'}"}}`);
    }
    for (const name of ['search', 'audit']) expect(JSON.stringify(docs(name))).not.toContain('KINESIS_READER');
    expect(container).toContain('"name":"KINESIS_WORKER_ID","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}');
    expect(JSON.stringify(docs('capture'))).toContain('"name":"CAPTURE_INSTANCE_ID","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}');
    expect(docs('capture').map((d) => d.kind)).not.toContain('HorizontalPodAutoscaler');
  });

  it("names the subject keys' KMS key for the readers that decrypt, the key set for the token verifiers, and gives the file keeper one pod with a volume", () => {
    const list = workloads(built.settings);
    const envOf = (name: string) => list.find((w) => w.name === name)?.env ?? {};
    for (const name of ['capture', 'router', 'search', 'notifications', 'gdpr']) expect({ name, key: envOf(name).SUBJECT_KEYS_KMS_KEY_ID }).toEqual({ name, key: 'alias/taskflow' });
    for (const name of ['router', 'search', 'notifications', 'analytics-loader']) expect({ name, jwks: envOf(name).JWT_JWKS_URL }).toEqual({ name, jwks: built.settings.jwt.jwksUrl });
    expect(envOf('analytics-loader').ARCHIVE_BUCKET).toBe(built.settings.rawArchiveBucket);
    // The lease name the reader's role is confined to (dynamodb:LeadingKeys) is the one its manifest sets.
    const readers = list.filter((w) => w.leases);
    expect(readers.map((w) => w.name).sort()).toEqual(['analytics-archiver', 'audit', 'notifications', 'router', 'search']);
    for (const w of readers) expect(JSON.stringify(manifests(w, { namespace: 'taskflow', image: 'img', roleArn: 'r', region: 'us-east-1' }))).toContain(`{"name":"${w.leases!.setting}","value":"${w.leases!.name}"}`);
    tpl('analytics').hasResourceProperties('AWS::S3::Bucket', { BucketName: built.settings.rawArchiveBucket });
    expect(envOf('analytics-archiver').FIREHOSE_DELIVERY_STREAM).toBe('taskflow-raw-archive');
    for (const name of ['analytics-loader']) {
      const w = list.find((x) => x.name === name);
      if (!w) throw new Error(name);
      const items = manifests(w, { namespace: 'taskflow', image: 'img', roleArn: 'r', region: 'us-east-1' }) as { kind: string; spec?: { replicas?: number; volumeClaimTemplates?: unknown[] } }[];
      const set = items.find((d) => d.kind === 'StatefulSet');
      expect({ name, replicas: set?.spec?.replicas, claims: set?.spec?.volumeClaimTemplates?.length, hpa: items.some((d) => d.kind === 'HorizontalPodAutoscaler') }).toEqual({ name, replicas: 1, claims: 1, hpa: false });
      expect(JSON.stringify(set)).toContain('"volumeMounts":[{"name":"data","mountPath":"/data"}]');
    }
  });
});

describe('the self-hosted broker tier', () => {
  type Doc = {
    kind: string;
    metadata: { name: string; annotations?: Record<string, string> };
    spec: {
      replicas?: number;
      serviceName?: string;
      clusterIP?: string;
      type?: string;
      ports?: { name: string; port: number; targetPort: string | number }[];
      maxUnavailable?: number;
      template?: { spec: { terminationGracePeriodSeconds: number; topologySpreadConstraints: { topologyKey: string; maxSkew: number; whenUnsatisfiable: string }[]; containers: { args: string[]; env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]; resources: { requests: { cpu: string; memory: string } }; readinessProbe: { httpGet: { path: string; port: string } }; livenessProbe: { httpGet: { path: string; port: string } } }[] } };
    };
  };
  const brokerOf = (settings = built.settings) => workloads(settings).find((w) => w.name === 'broker');
  const docsOf = () => manifests(brokerOf()!, { namespace: 'taskflow', image: 'img', roleArn: 'r', region: 'us-east-1' }) as Doc[];

  it("runs the cost model's node count as a fixed StatefulSet (no HPA) with its requests, the pod name as BROKER_ID, probes, a grace period beyond the drain, a PDB and zone spread", () => {
    const tier = brokerTier(loadScale('seed'), loadPrices());
    expect(tier.nodes).toBeGreaterThan(2);
    const docs = docsOf();
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'Service', 'StatefulSet', 'PodDisruptionBudget', 'Service']);
    const set = docs.find((d) => d.kind === 'StatefulSet')!;
    expect(set.spec.replicas).toBe(tier.nodes);
    expect(brokerOf()!.replicas).toEqual({ min: tier.nodes, max: tier.nodes });
    const pod = set.spec.template!.spec;
    const c = pod.containers[0]!;
    expect(c.args).toEqual(['broker']);
    expect(c.resources.requests).toEqual({ cpu: `${tier.cpuMillis}m`, memory: `${tier.memoryMi}Mi` });
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));
    expect(env).toMatchObject({ BROKER_ID: 'metadata.name', METRICS_HOST: '0.0.0.0', BROKER_WS_PORT: '8080', JWT_JWKS_URL: built.settings.jwt.jwksUrl });
    expect([c.readinessProbe.httpGet, c.livenessProbe.httpGet]).toEqual([{ path: '/readyz', port: 'metrics' }, { path: '/healthz', port: 'metrics' }]);
    // The drain (BROKER_DRAIN_MS, as the manifest sets it) ends before the kubelet's SIGKILL.
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(BROKER_SETTINGS.drainMs.read(env));
    // One node at a time, which the nodes-missing alarm allows for (infra/alarms.ts).
    expect(docs.find((d) => d.kind === 'PodDisruptionBudget')?.spec.maxUnavailable).toBe(BROKER_NODES_AWAY_AT_ONCE);
    expect(pod.topologySpreadConstraints).toEqual([expect.objectContaining({ topologyKey: 'topology.kubernetes.io/zone', maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' })]);
    expect(loadBrokerConfig(env as Record<string, string>)).toMatchObject({ wsPort: 8080, metricsHost: '0.0.0.0', drainMs: BROKER_SETTINGS.drainMs.read({}) });
  });

  it("gives the router one ws:// URL per pod by its headless Service's name, and browsers an internet-facing NLB: TLS 443 with the ACM certificate to the WebSocket port, cross-zone, health from /readyz", () => {
    const docs = docsOf();
    const broker = brokerOf()!;
    const [, headless, , , nlb] = docs;
    expect(headless?.metadata.name).toBe('broker');
    expect(headless?.spec.clusterIP).toBe('None');
    expect(headless?.spec.ports?.map((p) => [p.name, p.port])).toEqual([['metrics', 9400], ['ws', 8080]]);
    expect(docs.find((d) => d.kind === 'StatefulSet')?.spec.serviceName).toBe('broker');
    const urls = brokerNodeUrls(broker, 'taskflow');
    expect(urls).toHaveLength(broker.replicas.max);
    expect([urls[0], urls.at(-1)]).toEqual(['ws://broker-0.broker.taskflow.svc:8080', `ws://broker-${broker.replicas.max - 1}.broker.taskflow.svc:8080`]);
    // The list is the tier's own size: another scale gives another list, a scalable tier none.
    expect(brokerNodeUrls({ ...broker, replicas: { min: 5, max: 5 } }, 'taskflow')).toHaveLength(5);
    expect(() => brokerNodeUrls({ ...broker, replicas: { min: 3, max: 6 } }, 'taskflow')).toThrow(/fixed size/);
    const routerEnv = loadRouterConfig({ ...workloads(built.settings).find((w) => w.name === 'router')!.env, ROUTER_MQTT_PASSWORD: 't', KINESIS_WORKER_ID: 'router-0', ROUTER_FANOUT_CONSUMER_ARN: 'arn:aws:kinesis:us-east-1:1:stream/s/consumer/router:1' });
    expect(routerEnv.brokers?.map((n) => n.mqttUrl)).toEqual(urls);
    expect(nlb).toMatchObject({ kind: 'Service', metadata: { name: 'broker-public' }, spec: { type: 'LoadBalancer', ports: [{ name: 'wss', port: 443, targetPort: 'ws' }] } });
    expect(nlb?.metadata.annotations).toMatchObject({
      'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internet-facing',
      'service.beta.kubernetes.io/aws-load-balancer-ssl-cert': built.settings.brokerCertificateArn,
      'service.beta.kubernetes.io/aws-load-balancer-ssl-ports': '443',
      'service.beta.kubernetes.io/aws-load-balancer-attributes': 'load_balancing.cross_zone.enabled=true',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-path': '/readyz',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-port': '9400',
    });
  });

  it('gives the broker read-only access to the membership projection and nothing else', () => {
    const statements = Object.values(tpl('services').findResources('AWS::IAM::Policy')) as { Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } } }[];
    const [id] = Object.entries(tpl('services').findResources('AWS::IAM::Role')).find(([, r]) => (r as { Properties: { RoleName: string } }).Properties.RoleName === 'taskflow-prod-broker')!;
    const own = statements.filter((p) => p.Properties.Roles.some((r) => r.Ref === id)).flatMap((p) => p.Properties.PolicyDocument.Statement);
    expect(own.flatMap((st) => [st.Action].flat()).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:Query', 'kms:Decrypt', 'kms:DescribeKey']);
    expect(JSON.stringify(own.filter((st) => [st.Action].flat().some((a) => a.startsWith('dynamodb:'))))).toContain('Tablememberships');
  });

  it('reads the authorizer alarms from the nodes\' metrics (with IoT Core: from the Lambda)', () => {
    const byId = (list: ReturnType<typeof alarms>) => Object.fromEntries(list.filter((a) => a.id.startsWith('TaskflowAuthorizer')).map((a) => [a.id, [a.cloudwatch.namespace, a.cloudwatch.metricName]]));
    expect(byId(alarms(built.settings))).toEqual({ TaskflowAuthorizerErrors: [SERVICE_NAMESPACE, 'taskflow_authorizer_decisions_total'], TaskflowAuthorizerLatency: [SERVICE_NAMESPACE, 'taskflow_authorizer_seconds'] });
    expect(byId(alarms(iotCore.settings))).toEqual({ TaskflowAuthorizerErrors: ['AWS/Lambda', 'Errors'], TaskflowAuthorizerLatency: ['AWS/Lambda', 'Duration'] });
  });

  it("keeps the IoT Core deployment: no broker workload or role, the router on the account's endpoint with its certificate, tracking subscriptions and revoking through IoT", () => {
    expect(brokerOf(iotCore.settings)).toBeUndefined();
    const services = Template.fromStack(iotCore.stacks.services);
    expect(Object.values(services.findResources('AWS::IAM::Role')).map((r) => (r as { Properties: { RoleName: string } }).Properties.RoleName)).not.toContain('taskflow-prod-broker');
    const router = workloads(iotCore.settings).find((w) => w.name === 'router')!;
    const container = JSON.stringify(manifests(router, { namespace: 'taskflow', image: 'img', roleArn: 'r', region: 'us-east-1' }));
    expect(container).toContain(`"name":"MQTT_URL","value":"mqtts://${iotCore.settings.iotDataEndpoint}:8883"`);
    expect(container).toContain('"name":"ROUTER_MQTT_CERT_FILE","value":"/etc/taskflow/router-mqtt/cert.pem"');
    expect(container).toContain('"name":"ROUTER_MQTT_KEY_FILE","value":"/etc/taskflow/router-mqtt/key.pem"');
    expect(container).toContain('"volumeMounts":[{"name":"secret-files","mountPath":"/etc/taskflow/router-mqtt","readOnly":true}]');
    expect(container).toContain('"volumes":[{"name":"secret-files","secret":{"secretName":"taskflow-router-mqtt"');
    expect(container).not.toContain('ROUTER_BROKERS');
    const [routerRole] = Object.entries(services.findResources('AWS::IAM::Role')).find(([, r]) => (r as { Properties: { RoleName: string } }).Properties.RoleName === 'taskflow-prod-router')!;
    const own = JSON.stringify(Object.values(services.findResources('AWS::IAM::Policy')).filter((p) => (p as { Properties: { Roles: { Ref: string }[] } }).Properties.Roles.some((r) => r.Ref === routerRole)));
    expect(own).toContain('iot:DeleteConnection');
    expect(own).toContain('Tablesubscriptions');
    // Notifications publish through the IoT data plane (no tier to publish to): iot:Publish on users' topics only.
    const notifications = JSON.stringify(manifests(workloads(iotCore.settings).find((w) => w.name === 'notifications')!, { namespace: 'taskflow', image: 'img', roleArn: 'r', region: 'us-east-1' }));
    expect(notifications).toContain('"name":"NOTIFICATIONS_PUBLISHER","value":"iot-data"');
    expect(notifications).not.toContain('NOTIFICATIONS_BROKERS');
    expect(notifications).not.toContain('notifications-service-token');
    const [notificationsRole] = Object.entries(services.findResources('AWS::IAM::Role')).find(([, r]) => (r as { Properties: { RoleName: string } }).Properties.RoleName === 'taskflow-prod-notifications')!;
    const notificationsPolicies = JSON.stringify(Object.values(services.findResources('AWS::IAM::Policy')).filter((p) => (p as { Properties: { Roles: { Ref: string }[] } }).Properties.Roles.some((r) => r.Ref === notificationsRole)));
    expect(notificationsPolicies).toContain('iot:Publish');
    expect(notificationsPolicies).toContain('taskflow/v1/ws/*/users/*');
  });
});

describe('the manifests configure each service for production', () => {
  // What the deployment secrets hold (secrets.ts; operators put them in Secrets Manager).
  const SECRET_VALUES: Record<string, string> = {
    DATABASE_URL: 'postgres://taskflow_replication:secret@db.internal:5432/taskflow',
    token: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZXJ2aWNlOnJvdXRlciJ9.c2lnbmF0dXJl',
    AUDIT_KEY: 'k'.repeat(32),
    OPENSEARCH_URL: 'https://search.internal:9200',
  };
  const LOADERS: Record<string, (env: Record<string, string>) => unknown> = {
    capture: loadCaptureConfig,
    router: loadRouterConfig,
    search: loadSearchConfig,
    notifications: loadNotificationsConfig,
    audit: loadAuditConfig,
    gdpr: loadGdprConfig,
    'analytics-archiver': loadArchiverConfig,
    'analytics-loader': loadLoaderConfig,
    broker: loadBrokerConfig,
  };
  type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: unknown; configMapKeyRef?: { key: string }; secretKeyRef?: { name: string; key: string } } };
  type Doc = { kind: string; spec?: { template?: { spec: { containers: { env: EnvVar[] }[]; volumes?: { secret?: { secretName: string } }[] } } } };
  const podOf = (w: ReturnType<typeof workloads>[number]) => (manifests(w, { namespace: 'taskflow', image: 'img', roleArn: 'r', region: 'us-east-1' }) as Doc[]).find((d) => d.kind === w.kind)?.spec?.template?.spec;

  it("each workload's environment (outside development mode), its secrets' values, its pod name and consumer ARNs load its service's configuration", () => {
    for (const w of [...workloads(built.settings), ...workloads(iotCore.settings)]) {
      const load = LOADERS[w.name];
      if (!load) throw new Error(`no configuration loader listed for ${w.name}`);
      const resolved = (e: EnvVar): string => {
        if (e.value !== undefined) return e.value;
        if (e.valueFrom?.fieldRef) return `${w.name}-0`;
        if (e.valueFrom?.configMapKeyRef) return `arn:aws:kinesis:us-east-1:123456789012:stream/taskflow-changes/consumer/${e.valueFrom.configMapKeyRef.key}:1`;
        const fromSecret = e.valueFrom?.secretKeyRef && SECRET_VALUES[e.valueFrom.secretKeyRef.key];
        if (fromSecret) return fromSecret;
        throw new Error(`${w.name}: no value for ${e.name}`);
      };
      const env = Object.fromEntries((podOf(w)?.containers[0]?.env ?? []).map((e) => [e.name, resolved(e)]));
      expect(env.TASKFLOW_ENV).toBeUndefined();
      expect(() => load(env)).not.toThrow();
    }
  });

  it('every Kubernetes Secret a pod reads is written by an ExternalSecret with those keys, from a Secrets Manager secret only the operator reads', () => {
    const external = externalSecretsManifests({ env: 'prod', namespace: 'taskflow', region: 'us-east-1', roleArn: 'r' }) as { kind: string; spec: { target: { name: string }; data: { secretKey: string; remoteRef: { key: string; property: string } }[] } }[];
    const written = new Map(external.filter((d) => d.kind === 'ExternalSecret').map((d) => [d.spec.target.name, d.spec.data]));
    const read: [string, string | null][] = [];
    for (const w of workloads(built.settings)) {
      const pod = podOf(w);
      for (const e of pod?.containers[0]?.env ?? []) if (e.valueFrom?.secretKeyRef) read.push([e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]);
      for (const v of pod?.volumes ?? []) if (v.secret) read.push([v.secret.secretName, null]);
    }
    expect(read.length).toBeGreaterThan(5);
    for (const [secret, key] of read) {
      const data = written.get(secret);
      expect(data).toBeDefined();
      if (key) expect(data?.map((d) => d.secretKey)).toContain(key);
    }
    // Each ExternalSecret copies keys of its own Secrets Manager secret, and that secret exists in a stack.
    const names = ['realtime', 'services'].flatMap((k) => Object.values(tpl(k).findResources('AWS::SecretsManager::Secret')).map((r) => (r as { Properties: { Name: string } }).Properties.Name));
    for (const d of DEPLOYMENT_SECRETS) {
      expect(written.get(d.kubernetesSecret)?.map((x) => [x.secretKey, x.remoteRef.key, x.remoteRef.property])).toEqual(d.keys.map((k) => [k, secretsManagerName('prod', d), k]));
      expect(names).toContain(secretsManagerName('prod', d));
    }
    // Only the operator's role reads secrets; it reads nothing else and only the deployment's secrets.
    const readers = Object.values(tpl('services').findResources('AWS::IAM::Policy')).filter((p) => JSON.stringify(p).includes('secretsmanager:GetSecretValue'));
    expect(readers.map((p) => JSON.stringify((p as { Properties: { Roles: unknown } }).Properties.Roles))).toEqual([expect.stringContaining('ExternalSecrets')]);
    const statements = (readers[0] as { Properties: { PolicyDocument: { Statement: { Action: string[] | string }[] } } }).Properties.PolicyDocument.Statement;
    expect(statements.flatMap((st) => [st.Action].flat()).every((a) => a.startsWith('secretsmanager:'))).toBe(true);
    tpl('services').hasResourceProperties('AWS::IAM::Role', { RoleName: 'taskflow-prod-external-secrets', AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Condition: { StringEquals: { [`${built.settings.eksOidcProvider}:sub`]: 'system:serviceaccount:taskflow:taskflow-external-secrets', [`${built.settings.eksOidcProvider}:aud`]: 'sts.amazonaws.com' } } })] } });
  });
});

describe('metrics shipping', () => {
  it('ships every service metric a CloudWatch alarm reads, with exactly the dimensions the alarm names, and nothing else', () => {
    const catalog = alarms(built.settings);
    const declarations = metricDeclarations(shippedMetrics(catalog));
    const selected = (name: string, dims: string[]) => declarations.some((d) => JSON.stringify(d.dimensions) === JSON.stringify([dims]) && d.metric_selectors.some((re) => new RegExp(re).test(name)));
    const read = catalog.filter((a) => a.cloudwatch.namespace === SERVICE_NAMESPACE);
    expect(read.length).toBeGreaterThan(10);
    for (const a of read) expect([a.id, selected(a.cloudwatch.metricName, Object.keys(a.cloudwatch.dimensions ?? {}).sort())]).toEqual([a.id, true]);
    const readNames = new Set(read.map((a) => a.cloudwatch.metricName));
    for (const d of declarations) {
      expect(d).toMatchObject({ source_labels: ['job'], label_matcher: `^${SCRAPE_JOB}$` });
      for (const re of d.metric_selectors) expect([...readNames].some((n) => new RegExp(re).test(n))).toBe(true);
    }
  });

  it("scrapes the pipeline's pods on the port every workload names `metrics`, and the agent writes only to its log group under its own IRSA role", () => {
    const keep = scrapeConfig('taskflow').scrape_configs[0]!.relabel_configs.filter((r) => r.action === 'keep');
    expect(keep).toEqual([
      { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_part_of'], regex: 'taskflow', action: 'keep' },
      { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'metrics', action: 'keep' },
    ]);
    for (const w of workloads(built.settings)) {
      const docs = manifests(w, { namespace: 'taskflow', image: 'img', roleArn: 'r', region: 'us-east-1' }) as { kind: string; spec?: { template?: { metadata: { labels: Record<string, string> }; spec: { containers: { ports?: { name: string }[] }[] } } } }[];
      const template = docs.find((d) => d.kind === w.kind)?.spec?.template;
      expect([w.name, template?.metadata.labels['app.kubernetes.io/part-of']]).toEqual([w.name, 'taskflow']);
      expect(template?.spec.containers[0]?.ports?.map((p) => p.name)).toContain('metrics');
    }
    const agent = cloudWatchAgentManifests({ env: 'prod', namespace: 'taskflow', region: 'us-east-1', roleArn: 'arn:aws:iam::123456789012:role/taskflow-prod-cloudwatch-agent', catalog: alarms(built.settings) }) as { kind: string; metadata: { name: string; annotations?: Record<string, string> }; data?: Record<string, string>; spec?: { replicas?: number; template?: { spec: { serviceAccountName: string } } } }[];
    const account = agent.find((d) => d.kind === 'ServiceAccount');
    expect(account?.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::123456789012:role/taskflow-prod-cloudwatch-agent');
    expect(agent.find((d) => d.kind === 'Deployment')?.spec).toMatchObject({ replicas: 1, template: { spec: { serviceAccountName: account?.metadata.name } } });
    const config = JSON.parse(agent.find((d) => d.data?.['cwagentconfig.json'])!.data!['cwagentconfig.json']!) as { logs: { metrics_collected: { prometheus: { log_group_name: string; emf_processor: { metric_namespace: string } } } } };
    expect(config.logs.metrics_collected.prometheus).toMatchObject({ log_group_name: metricsLogGroupName('prod'), emf_processor: { metric_namespace: SERVICE_NAMESPACE } });
    tpl('services').hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: metricsLogGroupName('prod'), RetentionInDays: 7 });
    tpl('services').hasResourceProperties('AWS::IAM::Role', { RoleName: 'taskflow-prod-cloudwatch-agent', AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Condition: { StringEquals: { [`${built.settings.eksOidcProvider}:sub`]: `system:serviceaccount:taskflow:${account?.metadata.name}`, [`${built.settings.eksOidcProvider}:aud`]: 'sts.amazonaws.com' } } })] } });
  });
});

describe('the audit trail in production', () => {
  /** A workload's manifest: its kind's document and its container's environment (a fieldRef as `<name>-0`) plus the secret store's AUDIT_KEY. */
  const deployed = (name: string) => {
    const w = workloads(built.settings).find((x) => x.name === name);
    if (!w) throw new Error(name);
    const items = manifests(w, { namespace: 'taskflow', image: 'img', roleArn: 'r', region: 'us-east-1' }) as { kind: string; spec?: { volumeClaimTemplates?: unknown[]; template?: { spec: { containers: { env: { name: string; value?: string }[]; volumeMounts?: unknown[] }[] } } } }[];
    const doc = items.find((d) => d.kind === w.kind);
    const container = doc?.spec?.template?.spec.containers[0];
    const env: Record<string, string> = { ...Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? `${name}-0`])), AUDIT_KEY: 'k'.repeat(32) };
    return { kind: doc?.kind, claims: doc?.spec?.volumeClaimTemplates, mounts: container?.volumeMounts, env };
  };

  it('keeps the audit trail in S3: segments under Object Lock, identity mappings in an encrypted bucket without Object Lock or versioning', () => {
    const c = tpl('compliance');
    const [keyId] = Object.keys(c.findResources('AWS::KMS::Key'));
    c.hasResourceProperties('AWS::S3::Bucket', { BucketName: built.settings.auditBucket, ObjectLockEnabled: true, VersioningConfiguration: { Status: 'Enabled' } });
    const found = Object.entries(c.findResources('AWS::S3::Bucket', { Properties: { BucketName: built.settings.auditIdentityBucket } })) as [string, { Properties: Record<string, unknown> }][];
    expect(found).toHaveLength(1);
    const [id, identities] = found[0]!;
    // Erasure deletes a mapping: a lock would refuse it, a noncurrent version would keep it.
    expect(identities.Properties.ObjectLockEnabled).toBeUndefined();
    expect(identities.Properties.ObjectLockConfiguration).toBeUndefined();
    expect(identities.Properties.VersioningConfiguration).toBeUndefined();
    expect(identities.Properties.BucketEncryption).toEqual({ ServerSideEncryptionConfiguration: [{ BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } } }] });
    expect(identities.Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(identities.Properties.LoggingConfiguration).toMatchObject({ LogFilePrefix: 'audit-identities/' });
    c.hasResourceProperties('AWS::S3::BucketPolicy', { Bucket: { Ref: id }, PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) } });
  });

  it('runs audit as a Deployment without a volume on the S3 store, and opens the gdpr processor\'s audit sink on the same buckets', async () => {
    const audit = deployed('audit');
    expect({ kind: audit.kind, claims: audit.claims, mounts: audit.mounts }).toEqual({ kind: 'Deployment', claims: undefined, mounts: undefined });
    const s3 = { kind: 's3', lockedBucket: built.settings.auditBucket, mutableBucket: built.settings.auditIdentityBucket, retentionDays: 400 };
    expect(loadAuditConfig(audit.env).store).toEqual(s3);
    expect(audit.env.AUDIT_STORE_DIR).toBeUndefined();
    // The processor opens every erasure-sink module on its own environment (cli/commands/gdpr.ts).
    const opened = await openAuditErasureSinks(deployed('gdpr').env);
    try {
      expect(opened.sinks.map((k) => k.sink)).toEqual(['audit-trail']);
      expect(loadAuditStoreConfig(deployed('gdpr').env)).toEqual(s3);
    } finally {
      await opened.close();
    }
  });
});

describe('observability stack', () => {
  it('has one alarm per catalog entry, each naming its runbook and paging the SNS topic', () => {
    const list = alarms(built.settings);
    tpl('observability').resourceCountIs('AWS::CloudWatch::Alarm', list.length);
    for (const a of list) tpl('observability').hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: a.id, AlarmDescription: Match.stringLikeRegexp(`runbooks/${a.runbook}`), AlarmActions: [Match.anyValue()] });
    tpl('observability').resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

describe('taskflow infra synth', () => {
  it('the README lists every stack the app builds', () => {
    const readme = readFileSync(join(import.meta.dirname, 'README.md'), 'utf8');
    for (const name of Object.keys(built.stacks)) expect(readme).toContain(`\`${name}\``);
  });
});
