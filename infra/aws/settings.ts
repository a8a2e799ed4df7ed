// What the deployment is sized from: the cost model's scale (so the shard count is the one the
// bill was computed for, the broker tier the nodes the bill pays for) and the environment's names.
import { brokerTier, changelogCapacity, kinesisShards, leaseCapacity, peakFactor, type TableCapacity } from './cost/model.js';
import { loadPrices, loadScale } from './cost/load.js';

export interface Settings {
  env: string;
  account: string;
  region: string;
  streamName: string;
  /** A fixed name, so the alarm catalog (infra/alarms.ts) can name its Lambda metrics. */
  authorizerFunctionName: string;
  shards: number;
  /** The changelog table's provisioned auto scaling bounds, from the cost model (null: on-demand). */
  changelogCapacity: TableCapacity | null;
  /** The lease table's (the stream readers' leases and checkpoints), the same way. */
  leaseCapacity: TableCapacity | null;
  retentionHours: number;
  efoConsumers: string[];
  /** OIDC provider of the existing EKS cluster (IRSA). */
  eksOidcProvider: string;
  namespace: string;
  /** The raw archive's bucket, named so the loader's manifest can say where to read (bucket names are global: account in it). */
  rawArchiveBucket: string;
  /** The audit trail's buckets, named so the audit and gdpr manifests can say where the trail is: segments under Object Lock, and the identity mapping (no Object Lock: erasure deletes it). */
  auditBucket: string;
  auditIdentityBucket: string;
  snowflake: { accountUrl: string; database: string; schema: string; table: string; user: string };
  jwt: { jwksUrl: string; issuer: string; audience: string };
  /** The account's IoT Core data endpoint (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`): the router's broker. */
  iotDataEndpoint: string;
  /**
   * The browsers' broker: the self-hosted tier (the `broker` workload, the bill's default) or IoT
   * Core (the realtime stack's authorizer; the router publishes to the account's endpoint).
   */
  broker: 'self-hosted' | 'iot-core';
  /** The self-hosted tier's size, from the cost model at this scale: nodes (one aedes process per pod), each pod's requests, and the router's peak publishes to one node. */
  brokerTier: { nodes: number; cpuMillis: number; memoryMi: number; peakPublishesPerNodePerS: number };
  /** ACM certificate of the browsers' `wss://` endpoint: the broker tier's NLB terminates TLS with it (self-hosted only). */
  brokerCertificateArn: string;
}

export function defaultSettings(env = 'prod'): Settings {
  const scale = loadScale('seed');
  const prices = loadPrices();
  const account = '123456789012';
  const tier = brokerTier(scale, prices);
  return {
    env,
    account,
    region: 'us-east-1',
    streamName: 'taskflow-changes',
    authorizerFunctionName: `taskflow-${env}-iot-authorizer`,
    shards: kinesisShards(scale).shards,
    changelogCapacity: changelogCapacity(scale, prices),
    leaseCapacity: leaseCapacity(scale, prices),
    retentionHours: 168,
    efoConsumers: scale.services.efo_consumers,
    eksOidcProvider: 'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
    namespace: 'taskflow',
    rawArchiveBucket: `taskflow-${env}-raw-archive-${account}`,
    auditBucket: `taskflow-${env}-audit-${account}`,
    auditIdentityBucket: `taskflow-${env}-audit-identities-${account}`,
    snowflake: { accountUrl: 'https://example.us-east-1.snowflakecomputing.com', database: 'TASKFLOW', schema: 'RAW', table: 'CHANGES', user: 'FIREHOSE' },
    jwt: { jwksUrl: 'https://auth.taskflow.example/.well-known/jwks.json', issuer: 'https://auth.taskflow.example', audience: 'taskflow-realtime' },
    iotDataEndpoint: 'example-ats.iot.us-east-1.amazonaws.com',
    broker: 'self-hosted',
    brokerTier: { nodes: tier.nodes, cpuMillis: tier.cpuMillis, memoryMi: tier.memoryMi, peakPublishesPerNodePerS: (tier.nodePublishesPerS * peakFactor(scale)) / tier.nodes },
    brokerCertificateArn: `arn:aws:acm:us-east-1:${account}:certificate/00000000-0000-0000-0000-000000000000`,
  };
}
