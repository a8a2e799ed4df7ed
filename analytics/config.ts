// Every setting of the analytics services (archiver, loader, data quality), read once from the
// environment; lib/config.ts fails fast naming the bad variable.
import { join } from 'node:path';
import { type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type Env, int, optionalStr, str, tableEnvVar } from '../lib/config.js';
import { type ConsumerEnvConfig, loadConsumerConfig } from '../lib/kinesis-consumer/index.js';

export interface ArchiverConfig {
  aws: AwsConfig;
  consumer: ConsumerEnvConfig;
  /** Its own lease name: the archiver's checkpoints are independent of every other reader's. */
  consumerName: string;
  deliveryStreamName: string;
  dlqTable: string;
  metricsPort: number;
  /** Backoff ceiling for the first retry after throttling, and the largest delay. */
  backoff: { baseMs: number; maxMs: number };
}

export function loadArchiverConfig(env: Env): ArchiverConfig {
  return {
    aws: loadAwsConfig(env),
    consumer: loadConsumerConfig(env),
    consumerName: str(env, 'ARCHIVER_CONSUMER_NAME', 'analytics-archiver'),
    deliveryStreamName: str(env, 'FIREHOSE_DELIVERY_STREAM'),
    dlqTable: str(env, tableEnvVar('dlq'), 'taskflow-dlq'),
    metricsPort: int(env, 'METRICS_PORT', 0, { min: 0, max: 65535 }),
    backoff: { baseMs: int(env, 'ARCHIVER_BACKOFF_BASE_MS', 100, { min: 1 }), maxMs: int(env, 'ARCHIVER_BACKOFF_MAX_MS', 5_000, { min: 1 }) },
  };
}

/** Where the raw archive is read from: a local folder per bucket (S3_DIR) or an S3 API (S3_ENDPOINT, or AWS). */
export type ArchiveLocation = { kind: 'folder'; dir: string; bucket: string; prefix: string } | { kind: 's3'; bucket: string; prefix: string };

export function loadArchiveLocation(env: Env): ArchiveLocation {
  const bucket = str(env, 'ARCHIVE_BUCKET');
  const prefix = str(env, 'ARCHIVE_PREFIX', 'raw/');
  const dir = optionalStr(env, 'S3_DIR');
  return dir && !optionalStr(env, 'S3_ENDPOINT') ? { kind: 'folder', dir, bucket, prefix } : { kind: 's3', bucket, prefix };
}

export interface LoaderConfig {
  aws: AwsConfig;
  archive: ArchiveLocation;
  /** The DuckDB database file (one writing process per file). */
  warehousePath: string;
  pollIntervalMs: number;
  metricsPort: number;
  dq: DqConfig;
}

export interface DqConfig {
  /** The loader runs the checks after a load at most this often; 0 never. */
  intervalMs: number;
  freshnessMaxSeconds: number;
  settleSeconds: number;
}

export function loadDqConfig(env: Env): DqConfig {
  return {
    intervalMs: int(env, 'DQ_INTERVAL_MS', 60_000, { min: 0 }),
    freshnessMaxSeconds: int(env, 'DQ_FRESHNESS_MAX_SECONDS', 900, { min: 1 }),
    settleSeconds: int(env, 'DQ_SETTLE_SECONDS', 60, { min: 0 }),
  };
}

export function loadLoaderConfig(env: Env): LoaderConfig {
  const s3Dir = optionalStr(env, 'S3_DIR');
  return {
    aws: loadAwsConfig(env),
    archive: loadArchiveLocation(env),
    // Locally the warehouse sits beside the S3 folder, in the stack's data directory.
    warehousePath: str(env, 'WAREHOUSE_PATH', s3Dir ? join(s3Dir, '..', 'warehouse.duckdb') : undefined),
    pollIntervalMs: int(env, 'LOADER_POLL_INTERVAL_MS', 250, { min: 10 }),
    metricsPort: int(env, 'METRICS_PORT', 0, { min: 0, max: 65535 }),
    dq: loadDqConfig(env),
  };
}
