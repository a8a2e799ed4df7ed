// The consumer's settings from the environment, for a service's loadConfig(env): every
// consumer of the change stream reads the same variables, so they are parsed here once.
import { hostname } from 'node:os';
import { type Env, int, oneOf, optionalStr, str } from '../config.js';
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

/**
 * CHANGE_STREAM_NAME, DYNAMODB_TABLE_LEASES, KINESIS_WORKER_ID (default host-pid),
 * KINESIS_FAILOVER_MS (10000), KINESIS_POLL_INTERVAL_MS (200), KINESIS_MIN_CALL_SPACING_MS (200),
 * KINESIS_MAX_RECORDS (1000), KINESIS_INITIAL_POSITION (TRIM_HORIZON | LATEST),
 * KINESIS_SHARD_SYNC_MS (60000).
 */
export function loadConsumerConfig(env: Env): ConsumerEnvConfig {
  return {
    streamName: str(env, 'CHANGE_STREAM_NAME', 'taskflow-changes'),
    leaseTable: str(env, 'DYNAMODB_TABLE_LEASES', 'taskflow-leases'),
    workerId: optionalStr(env, 'KINESIS_WORKER_ID') ?? `${hostname()}-${process.pid}`,
    failoverTimeMs: int(env, 'KINESIS_FAILOVER_MS', 10_000, { min: 300 }),
    pollIntervalMs: int(env, 'KINESIS_POLL_INTERVAL_MS', 200, { min: 0 }),
    minCallSpacingMs: int(env, 'KINESIS_MIN_CALL_SPACING_MS', 200, { min: 0 }),
    maxRecords: int(env, 'KINESIS_MAX_RECORDS', 1000, { min: 1, max: 10_000 }),
    initialPosition: oneOf(env, 'KINESIS_INITIAL_POSITION', [TRIM_HORIZON, LATEST] as const, TRIM_HORIZON),
    shardSyncIntervalMs: int(env, 'KINESIS_SHARD_SYNC_MS', 60_000, { min: 100 }),
  };
}
