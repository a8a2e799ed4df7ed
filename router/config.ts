// The router's configuration, read once from the environment (fails fast naming the bad
// variable). ROUTER_SETTINGS declares each variable once: loadConfig, `taskflow router --help`
// and the reference in router/README.md all come from it (lib/config.ts).
import { hostname } from 'node:os';
import { AWS_SETTINGS, type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { DEFAULT_ROUTER_SERVICE_USER } from '../lib/authz.js';
import { type Env, boolSetting, intSetting, oneOfSetting, optionalSetting, readSettings, stringSetting, uniqueSettings, tableEnvVar } from '../lib/config.js';
import { JWT_SETTINGS, type JwtConfig, loadJwtConfig } from '../lib/jwt.js';
import { DEV_MODE_SETTINGS } from '../lib/dev-mode.js';
import { ConfigError } from '../lib/errors.js';
import { LOG_SETTINGS } from '../lib/logger.js';
import { METRICS_SETTINGS } from '../lib/metrics.js';
import { SUBJECT_KEY_SETTINGS, type SubjectKeyConfig, readerKeyConfig } from '../lib/subject-keys.js';
import { type ConsumerEnvConfig, fanOutOf, type ReadBudget, readBudgetSettings, readerSettings } from '@taskflow/stream';
import type { UserLimits } from '../lib/user-limits.js';
import { IOT_CORE_MAX_MESSAGE_BYTES, type PayloadMode } from './messages.js';
import { type BrokerNode, brokerNode } from '../lib/broker-tier.js';

export interface RouterConfig {
  aws: AwsConfig;
  streamName: string;
  consumerName: string;
  tables: { leases: string; changelog: string; dlq: string; memberships: string; subscriptions: string };
  changelogTtlSeconds: number;
  /** Batch window per project; 0 publishes each processed batch at once. */
  windowMs: number;
  /** Least time between two checkpoints of a shard (router/shard-processor.ts). */
  checkpointIntervalMs: number;
  payloadMode: PayloadMode;
  gzip: boolean;
  maxMessageBytes: number;
  publisher: 'mqtt' | 'iot-data';
  /** Set: publish to this tier of broker nodes (lib/broker-tier.ts) instead of MQTT_URL. */
  brokers?: BrokerNode[];
  mqtt: { url: string; poolSize: number; username: string; password?: string; publishesPerSecond: number; tls?: MqttTlsFiles };
  /** Where subscription lifecycle events come from; 'off' publishes to every project. */
  subscriptionEvents: 'aedes' | 'iot' | 'off';
  /** Longest a workspace's publishes wait for a revoked member's disconnect before going out anyway. */
  revocationHoldMs: number;
  /** The identity the router's MQTT connections use (token subject), see infra/local/broker-auth.ts. */
  serviceUserId: string;
  jwt: JwtConfig;
  replayPort: number;
  /** Replay requests worked on at once; the others wait, and those whose client gave up meanwhile are dropped (lib/http-api.ts). */
  replayMaxInFlight: number;
  replayMaxLimit: number;
  /** Per user: replay requests per second, burst, requests in flight, and changes read per second and at once (lib/user-limits.ts). */
  replayLimits: Required<UserLimits>;
  metricsPort: number;
  metricsHost: string;
  pollIntervalMs: number;
  /** Least time between two GetRecords calls on a shard: Kinesis allows 5/s per shard shared by all polling readers. */
  /** The router's share of each shard's GetRecords capacity (the other consumers read the rest). */
  readBudget: ReadBudget;
  minCallSpacingMs: number | undefined;
  /** Set (ROUTER_READER=fanout): read by enhanced fan-out as this registered stream consumer instead of polling. */
  fanOut: ConsumerEnvConfig['fanOut'];
  /**
   * This instance's lease owner id, stable across its restarts (a StatefulSet pod's name;
   * `taskflow dev` uses router-0) so a restarted router takes its leases back at once. Unique
   * among live instances. Default host-pid: a new worker, which waits for the old leases to expire.
   */
  workerId: string;
  failoverTimeMs: number;
  maxRecords: number;
  /** Subject keys to decrypt personal fields for browsers (crypto-shredding); none: they pass as they travelled. */
  subjectKeys?: SubjectKeyConfig;
}

const table = (key: string, fallback: string, meaning: string) => stringSetting({ name: tableEnvVar(key), default: fallback, meaning });

/** The replay API's page bound and per-user limits. */
const REPLAY_LIMIT_SETTINGS = {
  replayMaxLimit: intSetting({ name: 'REPLAY_MAX_LIMIT', default: 1000, min: 1, meaning: 'Most changes one replay request returns.' }),
  // A client replays to fill gaps, and after a reconnect once per subscription (IoT Core allows
  // 50 per connection): the request burst lets that through, the rate not a loop. Requests alone
  // do not bound a user's cost — a full page is REPLAY_MAX_LIMIT changes — so the changes read
  // are charged too (lib/user-limits.ts). One router serves ~7,000 replayed changes per core-second
  // (~0.09 ms of router CPU and ~0.05 ms of store per change, measured by flood-pipeline.test.ts):
  // 200/s per user is ~2 % of a core, the burst (a reconnect's catch-up: 50 subscriptions × 40
  // changes) ~0.2 s of it. Requests in flight are few because each admitted one may still read
  // a full page after the budget is spent: at once a user gets at most burst + 4 × REPLAY_MAX_LIMIT.
  replayRatePerUser: intSetting({ name: 'REPLAY_RATE_PER_USER', default: 20, min: 1, meaning: 'Replay requests per second one user may make (token bucket; 429 beyond it).' }),
  replayBurstPerUser: intSetting({ name: 'REPLAY_BURST_PER_USER', default: 100, min: 1, meaning: 'Replay requests one user may make at once before the rate applies.' }),
  replayConcurrencyPerUser: intSetting({ name: 'REPLAY_CONCURRENCY_PER_USER', default: 4, min: 1, meaning: 'Replay requests of one user in flight at a time (429 beyond; each may read a full page).' }),
  replayChangesPerUser: intSetting({ name: 'REPLAY_CHANGES_PER_SEC_PER_USER', default: 200, min: 1, meaning: 'Replayed changes per second one user may read (charged after each answer; a user in debt gets 429 until it is paid back).' }),
  replayChangesBurstPerUser: intSetting({ name: 'REPLAY_CHANGES_BURST_PER_USER', default: 2000, min: 1, meaning: 'Replayed changes one user may read at once before REPLAY_CHANGES_PER_SEC_PER_USER applies; at least REPLAY_MAX_LIMIT.' }),
};

/** Everything the router reads from the environment (besides AWS, JWT and log settings). */
/** The router's default share of each shard's read capacity (see ROUTER_SETTINGS). */
export const ROUTER_READ_BUDGET: ReadBudget = { callsPerSecond: 2, bytesPerSecond: 1024 * 1024 };

export const ROUTER_SETTINGS = {
  streamName: stringSetting({ name: 'CHANGE_STREAM_NAME', meaning: 'The Kinesis change stream to read.' }),
  consumerName: stringSetting({ name: 'ROUTER_CONSUMER_NAME', default: 'router', meaning: "Name of this reader's leases and checkpoints (one per independent reader)." }),
  leasesTable: table('leases', 'taskflow-leases', 'Shard leases and checkpoints (DynamoDB).'),
  changelogTable: table('changelog', 'taskflow-changelog', "Each project's recent changes by seq, and its head."),
  dlqTable: table('dlq', 'taskflow-dlq', 'Dead-letter table (lib/dlq.ts).'),
  membershipsTable: table('memberships', 'taskflow-memberships', 'Membership projection the authorization reads.'),
  subscriptionsTable: table('subscriptions', 'taskflow-subscriptions', 'Which projects have live subscribers.'),
  changelogTtlSeconds: intSetting({ name: 'ROUTER_CHANGELOG_TTL_SECONDS', default: 24 * 3600, min: 1, meaning: 'How long a changelog entry stays replayable (a client away longer resyncs).' }),
  windowMs: intSetting({ name: 'ROUTER_BATCH_WINDOW_MS', default: 100, min: 0, max: 10_000, meaning: 'Batch window per project; 0 publishes each processed batch at once.' }),
  // Each checkpoint writes the shard's marks (up to ~150 KB) into its lease's state slot: one per
  // window at every shard would be the lease table's largest cost (infra/aws/cost/model.ts). Not
  // longer: a crash re-reads up to the interval, which delays the first change after it
  // (bench:recovery's first change after a router kill: 1.23 s at 0, 1.26 s at 3 s, 1.66 s at 5 s,
  // medians; test/bench/README.md).
  checkpointIntervalMs: intSetting({ name: 'ROUTER_CHECKPOINT_INTERVAL_MS', default: 3000, min: 0, max: 60_000, meaning: "Least time between two checkpoints of a shard (position and marks: the marks into its lease's state slot); a crash re-reads at most this much more, with the same seqs. 0: after every batch window." }),
  payloadMode: oneOfSetting({ name: 'ROUTER_PAYLOAD_MODE', allowed: ['full', 'thin'] as const, default: 'full', meaning: 'full: messages and the changelog (so replay answers) carry the envelopes; thin: ids, seq and changed fields.' }),
  gzip: boolSetting({ name: 'ROUTER_GZIP', default: false, meaning: 'Gzip each MQTT message.' }),
  maxMessageBytes: intSetting({ name: 'ROUTER_MAX_MESSAGE_BYTES', default: IOT_CORE_MAX_MESSAGE_BYTES, min: 1024, max: IOT_CORE_MAX_MESSAGE_BYTES, meaning: 'Largest MQTT message; a larger batch is split.' }),
  publisher: oneOfSetting({ name: 'ROUTER_PUBLISHER', allowed: ['mqtt', 'iot-data'] as const, default: 'mqtt', meaning: 'mqtt: a pool of MQTT connections; iot-data: the IoT data-plane Publish API (IOT_DATA_ENDPOINT).' }),
  // The self-hosted tier (router/README.md "Self-hosted broker tier"): the StatefulSet's pod DNS names.
  brokers: optionalSetting({ name: 'ROUTER_BROKERS', default: 'none (one broker at MQTT_URL)', meaning: 'Comma-separated ws://host:port of the self-hosted broker nodes; the router publishes to each node with a subscriber and loads their subscriptions (no subscription-store writes).' }),
  mqttUrl: stringSetting({ name: 'MQTT_URL', default: 'mqtt://127.0.0.1:1883', meaning: 'Broker the mqtt publisher connects to.' }),
  // IoT Core allows 100 publishes/s per connection: 8 carry 800 messages/s, several times
  // what 1,000 changes/s over 50 projects needs (≈ 170/s), so topics that hash together
  // rarely queue behind each other's tokens.
  mqttConnections: intSetting({ name: 'ROUTER_MQTT_CONNECTIONS', default: 8, min: 1, max: 1000, meaning: 'MQTT connections of the mqtt publisher; a topic always uses the same one.' }),
  mqttUsername: stringSetting({ name: 'ROUTER_MQTT_USERNAME', default: 'taskflow-router', meaning: 'MQTT username of those connections.' }),
  mqttPassword: optionalSetting({ name: 'ROUTER_MQTT_PASSWORD', default: 'none', meaning: "MQTT password: the router's service token (JWT) for the local broker." }),
  // mTLS: IoT Core authenticates a device by its certificate (bench:iot-publish measured this path).
  mqttCaFile: optionalSetting({ name: 'ROUTER_MQTT_CA_FILE', default: 'the Node.js CA store', meaning: 'PEM CA bundle trusted for an mqtts:// MQTT_URL (IoT Core: Amazon Root CA 1).' }),
  mqttCertFile: optionalSetting({ name: 'ROUTER_MQTT_CERT_FILE', default: 'none (no client certificate)', meaning: "PEM client certificate of the router's MQTT connections (mTLS); needs ROUTER_MQTT_KEY_FILE." }),
  mqttKeyFile: optionalSetting({ name: 'ROUTER_MQTT_KEY_FILE', default: 'none', meaning: 'PEM private key of ROUTER_MQTT_CERT_FILE.' }),
  publishesPerSecond: intSetting({ name: 'ROUTER_PUBLISHES_PER_SECOND', default: 100, min: 1, meaning: 'Publishes per second per connection (IoT Core allows 100).' }),
  // IoT Core's lifecycle events (the local broker emits them too); 'aedes' ($SYS) has no session ids.
  subscriptionEvents: oneOfSetting({ name: 'ROUTER_SUBSCRIPTION_EVENTS', allowed: ['aedes', 'iot', 'off'] as const, default: 'iot', meaning: "Where subscription lifecycle events come from; 'off' publishes to every project." }),
  revocationHoldMs: intSetting({ name: 'ROUTER_REVOCATION_HOLD_MS', default: 3000, min: 100, max: 60_000, meaning: "Longest a workspace's publishes wait for a revoked member's connections to be closed before going out anyway (counted as a timeout)." }),
  serviceUserId: stringSetting({ name: 'ROUTER_SERVICE_USER', default: DEFAULT_ROUTER_SERVICE_USER, meaning: "The token subject of the router's MQTT connections (its own events are not subscriptions)." }),
  replayPort: intSetting({ name: 'REPLAY_PORT', default: 0, min: 0, max: 65535, meaning: 'Port of the replay API; 0 picks a free one.' }),
  // The store's connections (lib/aws.ts: 64 locally): more requests at once only queue there, where
  // one whose client timed out still costs its reads; waiting here, it is dropped unread.
  replayMaxInFlight: intSetting({ name: 'REPLAY_MAX_IN_FLIGHT', default: 64, min: 1, meaning: 'Replay requests worked on at once; the others wait in order, and one whose client went away meanwhile is dropped (outcome abandoned).' }),
  ...REPLAY_LIMIT_SETTINGS,
  ...METRICS_SETTINGS,
  pollIntervalMs: intSetting({ name: 'ROUTER_POLL_INTERVAL_MS', default: 200, min: 1, meaning: 'Wait before the next GetRecords on a shard that returned nothing.' }),
  // 2 of the shard's 5 calls/s and half its 2 MB/s: search, notifications, audit and the archiver
  // read the rest (packages/stream/README.md, "Read budget"); a latency-critical reader in
  // production uses enhanced fan-out instead, which has its own 2 MB/s.
  ...readBudgetSettings('ROUTER', ROUTER_READ_BUDGET, 'the router'),
  // Production reads by fan-out (infra/aws/workloads.ts): records pushed ~70 ms after the put
  // instead of waiting for the router's next poll, whatever the polling readers spend.
  ...readerSettings('ROUTER', 'the router (production: its EFO consumer, infra/aws/workloads.ts)'),
  workerId: optionalSetting({ name: 'KINESIS_WORKER_ID', default: '<hostname>-<pid>', meaning: "This instance's lease owner id: stable across its restarts (a StatefulSet pod's name) so a restarted router takes its leases back at once, unique among live instances." }),
  // A peer takes a dead instance's shards between 1 and 4/3 failover times after its death
  // (packages/stream/README.md): 1.5 s keeps that, plus the first read, under the 3 s recovery target.
  failoverTimeMs: intSetting({ name: 'ROUTER_FAILOVER_MS', default: 1500, min: 100, meaning: "A shard lease not renewed for this long is taken over by another instance." }),
  maxRecords: intSetting({ name: 'ROUTER_MAX_RECORDS', default: 1000, min: 1, max: 10_000, meaning: 'Records per GetRecords call at most.' }),
};

/** What `taskflow router --help` and router/README.md list: every variable the router reads. */
export const ROUTER_SETTING_LIST = uniqueSettings(ROUTER_SETTINGS, AWS_SETTINGS, JWT_SETTINGS, SUBJECT_KEY_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

/** The replay API's page bound and per-user limits (the flood tests use the defaults: `loadReplayLimits({})`). */
export function loadReplayLimits(env: Env): Pick<RouterConfig, 'replayMaxLimit' | 'replayLimits'> {
  const s = readSettings(env, REPLAY_LIMIT_SETTINGS);
  // A smaller burst would put a user's first full page into debt at once.
  if (s.replayChangesBurstPerUser < s.replayMaxLimit) throw new ConfigError('REPLAY_CHANGES_BURST_PER_USER', `must be >= REPLAY_MAX_LIMIT (${s.replayMaxLimit}), got ${s.replayChangesBurstPerUser}`);
  return {
    replayMaxLimit: s.replayMaxLimit,
    replayLimits: { ratePerSec: s.replayRatePerUser, burst: s.replayBurstPerUser, maxConcurrent: s.replayConcurrencyPerUser, maxUsers: 100_000, served: { perSec: s.replayChangesPerUser, burst: s.replayChangesBurstPerUser } },
  };
}

/** Files of the router's mTLS identity (read when the pool connects). */
export interface MqttTlsFiles {
  caFile?: string;
  certFile: string;
  keyFile: string;
}

function mqttTls(caFile: string | undefined, certFile: string | undefined, keyFile: string | undefined): { tls?: MqttTlsFiles } {
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError('ROUTER_MQTT_CERT_FILE', 'goes with ROUTER_MQTT_KEY_FILE: set both for mTLS, or neither');
  if (certFile === undefined || keyFile === undefined) {
    if (caFile !== undefined) throw new ConfigError('ROUTER_MQTT_CA_FILE', 'is for mTLS: set ROUTER_MQTT_CERT_FILE and ROUTER_MQTT_KEY_FILE too');
    return {};
  }
  return { tls: { ...(caFile ? { caFile } : {}), certFile, keyFile } };
}

function brokerTier(list: string | undefined, publisher: string, events: string): { brokers?: BrokerNode[] } {
  if (list === undefined) return {};
  if (publisher !== 'mqtt' || events !== 'iot') throw new ConfigError('ROUTER_BROKERS', 'needs ROUTER_PUBLISHER=mqtt and ROUTER_SUBSCRIPTION_EVENTS=iot (the nodes emit IoT-style lifecycle events)');
  try {
    const brokers = list.split(',').map((u) => u.trim()).filter((u) => u !== '').map(brokerNode);
    if (brokers.length === 0) throw new Error('no node');
    return { brokers };
  } catch (err) {
    throw new ConfigError('ROUTER_BROKERS', `comma-separated ws://host:port list: ${(err as Error).message}`);
  }
}

export function loadConfig(env: Env): RouterConfig {
  const s = readSettings(env, ROUTER_SETTINGS);
  return {
    aws: loadAwsConfig(env),
    streamName: s.streamName,
    consumerName: s.consumerName,
    tables: { leases: s.leasesTable, changelog: s.changelogTable, dlq: s.dlqTable, memberships: s.membershipsTable, subscriptions: s.subscriptionsTable },
    changelogTtlSeconds: s.changelogTtlSeconds,
    windowMs: s.windowMs,
    checkpointIntervalMs: s.checkpointIntervalMs,
    payloadMode: s.payloadMode,
    gzip: s.gzip,
    maxMessageBytes: s.maxMessageBytes,
    publisher: s.publisher,
    ...brokerTier(s.brokers, s.publisher, s.subscriptionEvents),
    mqtt: {
      url: s.mqttUrl,
      poolSize: s.mqttConnections,
      username: s.mqttUsername,
      ...(s.mqttPassword ? { password: s.mqttPassword } : {}),
      publishesPerSecond: s.publishesPerSecond,
      ...mqttTls(s.mqttCaFile, s.mqttCertFile, s.mqttKeyFile),
    },
    subscriptionEvents: s.subscriptionEvents,
    revocationHoldMs: s.revocationHoldMs,
    serviceUserId: s.serviceUserId,
    jwt: loadJwtConfig(env),
    replayPort: s.replayPort,
    replayMaxInFlight: s.replayMaxInFlight,
    ...loadReplayLimits(env),
    metricsPort: s.metricsPort,
    metricsHost: s.metricsHost,
    pollIntervalMs: s.pollIntervalMs,
    readBudget: { callsPerSecond: s.readCallsPerSecond, bytesPerSecond: s.readMbPerSecond * 1024 * 1024 },
    minCallSpacingMs: s.minCallSpacingMs,
    fanOut: fanOutOf('ROUTER', s),
    workerId: s.workerId ?? `${hostname()}-${process.pid}`,
    failoverTimeMs: s.failoverTimeMs,
    maxRecords: s.maxRecords,
    ...readerKeyConfig(env),
  };
}
