// The consumer's settings from the environment, for a service's loadConfig(env): every
// consumer of the change stream reads the same variables, so they are declared here once
// (CONSUMER_SETTINGS; the README's reference is rendered from it, lib/config.ts).
import { hostname } from 'node:os';
import { type Env, intSetting, oneOfSetting, optionalSetting, readSettings, stringSetting } from '../../../../lib/config.js';
import { LATEST, TRIM_HORIZON, type InitialPosition } from './leases.js';

export interface ConsumerEnvConfig {
  streamName: string;
  leaseTable: string;
  workerId: string;
  failoverTimeMs: number;
  pollIntervalMs: number;
  minCallSpacingMs: number;
  maxRecords: number;
  initialPosition: InitialPosition;
  shardSyncIntervalMs: number;
}

export const CONSUMER_SETTINGS = {
  streamName: stringSetting({ name: 'CHANGE_STREAM_NAME', default: 'taskflow-changes', meaning: 'The Kinesis stream to read.' }),
  leaseTable: stringSetting({ name: 'DYNAMODB_TABLE_LEASES', default: 'taskflow-leases', meaning: 'Shard leases and checkpoints (DynamoDB).' }),
  workerId: optionalSetting({ name: 'KINESIS_WORKER_ID', default: '<hostname>-<pid>', meaning: 'This worker in the lease table; unique per running process.' }),
  failoverTimeMs: intSetting({ name: 'KINESIS_FAILOVER_MS', default: 10_000, min: 300, meaning: 'A lease not renewed for this long is taken over (renewed every third of it).' }),
  pollIntervalMs: intSetting({ name: 'KINESIS_POLL_INTERVAL_MS', default: 200, min: 0, meaning: 'Wait after an empty read before polling the shard again.' }),
  minCallSpacingMs: intSetting({ name: 'KINESIS_MIN_CALL_SPACING_MS', default: 200, min: 0, meaning: 'Least time between two GetRecords calls on a shard (5/s per shard for all polling readers).' }),
  maxRecords: intSetting({ name: 'KINESIS_MAX_RECORDS', default: 1000, min: 1, max: 10_000, meaning: 'GetRecords Limit.' }),
  initialPosition: oneOfSetting({ name: 'KINESIS_INITIAL_POSITION', allowed: [TRIM_HORIZON, LATEST] as const, default: TRIM_HORIZON, meaning: 'Where a shard without a checkpoint is read from.' }),
  shardSyncIntervalMs: intSetting({ name: 'KINESIS_SHARD_SYNC_MS', default: 60_000, min: 100, meaning: 'How often shards are listed (new shards after a reshard).' }),
};

export function loadConsumerConfig(env: Env): ConsumerEnvConfig {
  const s = readSettings(env, CONSUMER_SETTINGS);
  return { ...s, workerId: s.workerId ?? `${hostname()}-${process.pid}` };
}
