// The consumer's settings from the environment, for a service's loadConfig(env): every
// consumer of the change stream reads the same variables, so they are declared here once
// (CONSUMER_SETTINGS; the README's reference is rendered from it, lib/config.ts).
import { hostname } from 'node:os';
import { ConfigError } from '../../../../lib/errors.js';
import { type Env, customSetting, int, intSetting, numberSetting, oneOfSetting, optionalSetting, readSettings, stringSetting } from '../../../../lib/config.js';
import { LATEST, TRIM_HORIZON, type InitialPosition } from './leases.js';
import { DEFAULT_READ_BUDGET, GET_RECORDS_BYTES_PER_SECOND, GET_RECORDS_CALLS_PER_SECOND, type ReadBudget } from './shard-reader.js';

export interface ConsumerEnvConfig {
  streamName: string;
  leaseTable: string;
  workerId: string;
  failoverTimeMs: number;
  pollIntervalMs: number;
  readBudget: ReadBudget;
  minCallSpacingMs: number | undefined;
  /** Set: read by enhanced fan-out (KINESIS_READER=fanout) as this registered consumer. */
  fanOut: { consumerArn: string; endpoint?: string } | undefined;
  maxRecords: number;
  initialPosition: InitialPosition;
  shardSyncIntervalMs: number;
  checkpointIntervalMs: number;
}

export const CONSUMER_SETTINGS = {
  streamName: stringSetting({ name: 'CHANGE_STREAM_NAME', default: 'taskflow-changes', meaning: 'The Kinesis stream to read.' }),
  leaseTable: stringSetting({ name: 'DYNAMODB_TABLE_LEASES', default: 'taskflow-leases', meaning: 'Shard leases and checkpoints (DynamoDB).' }),
  workerId: optionalSetting({ name: 'KINESIS_WORKER_ID', default: '<hostname>-<pid>', meaning: 'This worker in the lease table; unique per running process.' }),
  failoverTimeMs: intSetting({ name: 'KINESIS_FAILOVER_MS', default: 10_000, min: 300, meaning: 'A lease not renewed for this long is taken over (renewed every third of it).' }),
  pollIntervalMs: intSetting({ name: 'KINESIS_POLL_INTERVAL_MS', default: 200, min: 0, meaning: 'Wait after an empty read before polling the shard again.' }),
  ...readBudgetSettings('KINESIS', DEFAULT_READ_BUDGET, 'this consumer'),
  ...readerSettings('KINESIS', 'latency-critical consumers'),
  maxRecords: intSetting({ name: 'KINESIS_MAX_RECORDS', default: 1000, min: 1, max: 10_000, meaning: 'GetRecords Limit.' }),
  initialPosition: oneOfSetting({ name: 'KINESIS_INITIAL_POSITION', allowed: [TRIM_HORIZON, LATEST] as const, default: TRIM_HORIZON, meaning: 'Where a shard without a checkpoint is read from.' }),
  shardSyncIntervalMs: intSetting({ name: 'KINESIS_SHARD_SYNC_MS', default: 60_000, min: 100, meaning: 'How often shards are listed (new shards after a reshard).' }),
  checkpointIntervalMs: intSetting({
    name: 'KINESIS_CHECKPOINT_INTERVAL_MS',
    default: 1000,
    min: 0,
    max: 60_000,
    meaning: 'Least time between two checkpoints of a shard (each a lease-table write); one asked for sooner is written when the interval has passed or before the lease is released. A crash re-reads at most this much more. 0: every checkpoint at once.',
  }),
};

/**
 * A reader's share of each shard's GetRecords budget (5 calls/s, 2 MB/s for all polling readers
 * together), declared per service: `prefix` KINESIS for the consumers, ROUTER for the router.
 */
export function readBudgetSettings(prefix: string, defaults: ReadBudget, who: string) {
  const mb = 1024 * 1024;
  return {
    readCallsPerSecond: numberSetting({
      name: `${prefix}_READS_PER_SECOND`,
      default: defaults.callsPerSecond,
      min: 0.05,
      max: GET_RECORDS_CALLS_PER_SECOND,
      meaning: `GetRecords calls per second per shard for ${who}: its share of Kinesis' 5/s per shard, shared by every polling reader (router 2 + four consumers at 0.75 = 5).`,
    }),
    readMbPerSecond: numberSetting({
      name: `${prefix}_READ_MB_PER_SECOND`,
      default: defaults.bytesPerSecond / mb,
      min: 0.01,
      max: GET_RECORDS_BYTES_PER_SECOND / mb,
      meaning: `MB per second per shard ${who} reads at most: its share of Kinesis' 2 MB/s per shard (router 1 + four consumers at 0.25 = 2); after a large read the next call waits.`,
    }),
    minCallSpacingMs: customSetting({
      name: `${prefix}_MIN_CALL_SPACING_MS`,
      type: 'integer >= 0',
      default: `1000 / ${prefix}_READS_PER_SECOND`,
      meaning: 'Overrides the call spacing the budget gives, e.g. 0 against a local Kinesis without limits (the MB budget still applies).',
      read: (env) => (env[`${prefix}_MIN_CALL_SPACING_MS`] ? int(env, `${prefix}_MIN_CALL_SPACING_MS`, 0, { min: 0 }) : undefined),
    }),
  };
}

/**
 * How a reader reads its shards — polling within its budget, or enhanced fan-out as a registered
 * stream consumer — declared per service like the budget (`prefix` KINESIS or ROUTER); `fanOutOf`
 * turns the values into createConsumer's `fanOut`.
 */
export function readerSettings(prefix: string, fanOutFor: string) {
  return {
    reader: oneOfSetting({ name: `${prefix}_READER`, allowed: ['polling', 'fanout'] as const, default: 'polling', meaning: `polling: GetRecords within the read budget; fanout: enhanced fan-out (SubscribeToShard over HTTP/2: records pushed, a 2 MB/s per shard of the consumer's own, the read budget unused) for ${fanOutFor}.` }),
    fanOutConsumerArn: optionalSetting({ name: `${prefix}_FANOUT_CONSUMER_ARN`, default: `required with ${prefix}_READER=fanout`, meaning: 'The registered stream consumer (RegisterStreamConsumer, done by the deployment) the fan-out reader subscribes as.' }),
    fanOutEndpoint: optionalSetting({ name: `${prefix}_FANOUT_ENDPOINT`, type: 'URL', default: "AWS's endpoint", meaning: 'Where SubscribeToShard goes instead (a local stand-in: kinesalite has no fan-out).' }),
  };
}

export function fanOutOf(prefix: string, s: { reader: 'polling' | 'fanout'; fanOutConsumerArn: string | undefined; fanOutEndpoint: string | undefined }): ConsumerEnvConfig['fanOut'] {
  if (s.reader !== 'fanout') return undefined;
  if (!s.fanOutConsumerArn) throw new ConfigError(`${prefix}_FANOUT_CONSUMER_ARN`, `is required with ${prefix}_READER=fanout`);
  return { consumerArn: s.fanOutConsumerArn, ...(s.fanOutEndpoint ? { endpoint: s.fanOutEndpoint } : {}) };
}

export function loadConsumerConfig(env: Env): ConsumerEnvConfig {
  const { readCallsPerSecond, readMbPerSecond, reader, fanOutConsumerArn, fanOutEndpoint, ...s } = readSettings(env, CONSUMER_SETTINGS);
  const fanOut = fanOutOf('KINESIS', { reader, fanOutConsumerArn, fanOutEndpoint });
  return { ...s, fanOut, readBudget: { callsPerSecond: readCallsPerSecond, bytesPerSecond: readMbPerSecond * 1024 * 1024 }, workerId: s.workerId ?? `${hostname()}-${process.pid}` };
}
