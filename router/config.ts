// The router's configuration, read once from the environment (lib/config.ts fails fast naming
// the bad variable).
import { hostname } from 'node:os';
import { type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type Env, bool, int, oneOf, optionalStr, str } from '../lib/config.js';
import { type JwtConfig, loadJwtConfig } from '../lib/jwt.js';
import { tableEnvVar } from '../lib/stack-info.js';
import { IOT_CORE_MAX_MESSAGE_BYTES, type PayloadMode } from './messages.js';

export interface RouterConfig {
  aws: AwsConfig;
  streamName: string;
  consumerName: string;
  tables: { leases: string; changelog: string; dlq: string; memberships: string; subscriptions: string };
  changelogTtlSeconds: number;
  /** Batch window per project; 0 publishes each processed batch at once. */
  windowMs: number;
  payloadMode: PayloadMode;
  gzip: boolean;
  maxMessageBytes: number;
  publisher: 'mqtt' | 'iot-data';
  mqtt: { url: string; poolSize: number; username: string; password?: string; publishesPerSecond: number };
  /** Where subscription lifecycle events come from; 'off' publishes to every project. */
  subscriptionEvents: 'aedes' | 'iot' | 'off';
  /** Longest a workspace's publishes wait for a revoked member's disconnect before going out anyway. */
  revocationHoldMs: number;
  /** The identity the router's MQTT connections use (token subject), see infra/local/broker-auth.ts. */
  serviceUserId: string;
  jwt: JwtConfig;
  replayPort: number;
  replayMaxLimit: number;
  metricsPort: number;
  pollIntervalMs: number;
  /** Least time between two GetRecords calls on a shard: Kinesis allows 5/s per shard shared by all polling readers. */
  minCallSpacingMs: number;
  /**
   * This instance's lease owner id, stable across its restarts (a StatefulSet pod's name;
   * `taskflow dev` uses router-0) so a restarted router takes its leases back at once. Unique
   * among live instances. Default host-pid: a new worker, which waits for the old leases to expire.
   */
  workerId: string;
  failoverTimeMs: number;
  maxRecords: number;
}

export function loadConfig(env: Env): RouterConfig {
  const table = (key: string, fallback: string) => str(env, tableEnvVar(key), fallback);
  const password = optionalStr(env, 'ROUTER_MQTT_PASSWORD');
  return {
    aws: loadAwsConfig(env),
    streamName: str(env, 'CHANGE_STREAM_NAME'),
    consumerName: str(env, 'ROUTER_CONSUMER_NAME', 'router'),
    tables: {
      leases: table('leases', 'taskflow-leases'),
      changelog: table('changelog', 'taskflow-changelog'),
      dlq: table('dlq', 'taskflow-dlq'),
      memberships: table('memberships', 'taskflow-memberships'),
      subscriptions: table('subscriptions', 'taskflow-subscriptions'),
    },
    changelogTtlSeconds: int(env, 'ROUTER_CHANGELOG_TTL_SECONDS', 7 * 24 * 3600, { min: 1 }),
    windowMs: int(env, 'ROUTER_BATCH_WINDOW_MS', 100, { min: 0, max: 10_000 }),
    payloadMode: oneOf(env, 'ROUTER_PAYLOAD_MODE', ['full', 'thin'] as const, 'full'),
    gzip: bool(env, 'ROUTER_GZIP', false),
    maxMessageBytes: int(env, 'ROUTER_MAX_MESSAGE_BYTES', IOT_CORE_MAX_MESSAGE_BYTES, { min: 1024, max: IOT_CORE_MAX_MESSAGE_BYTES }),
    publisher: oneOf(env, 'ROUTER_PUBLISHER', ['mqtt', 'iot-data'] as const, 'mqtt'),
    mqtt: {
      url: str(env, 'MQTT_URL', 'mqtt://127.0.0.1:1883'),
      // IoT Core allows 100 publishes/s per connection: 8 carry 800 messages/s, several times
      // what 1,000 changes/s over 50 projects needs (≈ 170/s), so topics that hash together
      // rarely queue behind each other's tokens.
      poolSize: int(env, 'ROUTER_MQTT_CONNECTIONS', 8, { min: 1, max: 1000 }),
      username: str(env, 'ROUTER_MQTT_USERNAME', 'taskflow-router'),
      ...(password ? { password } : {}),
      publishesPerSecond: int(env, 'ROUTER_PUBLISHES_PER_SECOND', 100, { min: 1 }),
    },
    // IoT Core's lifecycle events (the local broker emits them too); 'aedes' ($SYS) has no session ids.
    subscriptionEvents: oneOf(env, 'ROUTER_SUBSCRIPTION_EVENTS', ['aedes', 'iot', 'off'] as const, 'iot'),
    revocationHoldMs: int(env, 'ROUTER_REVOCATION_HOLD_MS', 3000, { min: 100, max: 60_000 }),
    serviceUserId: str(env, 'ROUTER_SERVICE_USER', 'service:router'),
    jwt: loadJwtConfig(env),
    replayPort: int(env, 'REPLAY_PORT', 0, { min: 0, max: 65535 }),
    replayMaxLimit: int(env, 'REPLAY_MAX_LIMIT', 1000, { min: 1 }),
    metricsPort: int(env, 'METRICS_PORT', 0, { min: 0, max: 65535 }),
    pollIntervalMs: int(env, 'ROUTER_POLL_INTERVAL_MS', 200, { min: 1 }),
    minCallSpacingMs: int(env, 'ROUTER_MIN_CALL_SPACING_MS', 200, { min: 0 }),
    workerId: optionalStr(env, 'KINESIS_WORKER_ID') ?? `${hostname()}-${process.pid}`,
    // A peer takes a dead instance's shards between 1 and 4/3 failover times after its death
    // (lib/kinesis-consumer/README.md): 1.5 s keeps that, plus the first read, under the 3 s recovery target.
    failoverTimeMs: int(env, 'ROUTER_FAILOVER_MS', 1500, { min: 100 }),
    maxRecords: int(env, 'ROUTER_MAX_RECORDS', 1000, { min: 1, max: 10_000 }),
  };
}
